# A small closure for the binary cache tests: top refers to lib, which
# refers to itself and to a text file; lib holds a 20 MiB incompressible
# blob (several S3 parts and zstd frames) next to small files.
let
  dep = builtins.toFile "releng-cache-dep" "dependency\n";
  lib = derivation {
    name = "releng-cache-lib-1.0"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
    args = [ "-c" "mkdir -p $out/share $out/bin; echo $out > $out/self; echo ${dep} > $out/dep; dd if=/dev/urandom of=$out/share/blob bs=1M count=20 2>/dev/null; seq 1 100000 > $out/share/numbers; printf '#!/bin/sh\\necho hi\\n' > $out/bin/hi; chmod +x $out/bin/hi; ln -s ../share/numbers $out/bin/numbers" ];
  };
in derivation {
  name = "releng-cache-top"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
  args = [ "-c" "mkdir $out; echo ${lib} > $out/lib; seq 1 1000 > $out/data" ];
}
