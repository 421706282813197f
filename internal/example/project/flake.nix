{
  description = "hello: a tiny project released with releng (no nixpkgs: every builder is /bin/sh)";

  outputs = { self }:
    let
      version = (builtins.fromJSON (builtins.readFile ./version.json)).version;

      # There is no aarch64 builder here: every derivation builds on
      # x86_64-linux, and the aarch64-linux jobs are x86_64 derivations named
      # for that system.
      buildSystem = "x86_64-linux";
      systems = [ "x86_64-linux" "aarch64-linux" ];

      shell = name: script: attrs: builtins.derivation ({
        inherit name;
        system = buildSystem;
        builder = "/bin/sh";
        args = [ "-e" "-c" ("export PATH=/usr/bin:/bin\n" + script) ];
      } // attrs);

      # A data path that the program refers to: at least two store paths with
      # a reference between them.
      greeting = shell "hello-greeting-${version}" ''
        mkdir -p $out/share/hello
        cp $src $out/share/hello/greeting.txt
      '' { src = ./src/greeting.txt; };

      hello = system: shell "hello-${version}" ''
        mkdir -p $out/bin $doc/share/doc/hello/manual
        sed -e "s|@greeting@|${greeting}/share/hello/greeting.txt|" \
            -e "s|@version@|${version}|" -e "s|@system@|${system}|" \
          $src > $out/bin/hello
        chmod 755 $out/bin/hello
        for page in $manual/*.html; do
          sed -e "s|@version@|${version}|" $page > $doc/share/doc/hello/manual/$(basename $page)
        done
      '' { src = ./src/hello.sh; manual = ./doc/manual/html; outputs = [ "out" "doc" ]; };

      # The binary tarballs, one per system, with their checksums (as Lix's
      # binaryTarball jobs joined into one directory).
      tarballs = shell "hello-tarballs-${version}" (''
        mkdir -p $out
      '' + builtins.concatStringsSep "" (map (system: ''
        dir=$(mktemp -d)
        mkdir -p $dir/hello-${version}-${system}
        cp -r ${hello system}/. $dir/hello-${version}-${system}/
        tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner --mode=u+w,go-w \
          -C $dir -cf - hello-${version}-${system} | gzip -9n > $out/hello-${version}-${system}.tar.gz
        sha256sum $out/hello-${version}-${system}.tar.gz | cut -c1-64 | tr -d '\n' > $out/hello-${version}-${system}.tar.gz.sha256
      '') systems)) { };

      jobsFor = systems: {
        build = builtins.listToAttrs (map (system: { name = system; value = hello system; }) systems);
        inherit tarballs;
      };
    in {
      packages = builtins.listToAttrs (map (system: {
        name = system;
        value = { default = hello system; hello = hello system; };
      }) systems);

      release-jobs = {
        all = jobsFor systems;
        x86_64-linux-only = jobsFor [ "x86_64-linux" ];
      };
    };
}
