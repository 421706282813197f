let
  dep = builtins.toFile "releng-dep" "dependency\n";
  a = derivation { name = "releng-a-1.0"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" "read x < ${dep}; mkdir $out; echo $out > $out/self; echo ${dep} > $out/dep" ]; };
in derivation { name = "releng-b"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" "echo ${a} > $out" ]; }
