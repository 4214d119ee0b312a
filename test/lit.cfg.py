# lit configuration for weft's tests: dialects, passes, onnx import, tools.
import os
import shlex
import shutil
import sys

import lit.formats

config.name = "weft"
config.test_format = lit.formats.ShTest(not lit_config.isWindows)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.weft_obj_root, "test")
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "CMakeLists.txt",
                   "unit", "fixtures", "models", "Inputs"]

# Tools: weft's own first, then LLVM's FileCheck, not, count.
path = [config.weft_tools_dir, config.llvm_tools_dir,
        os.environ.get("PATH", "")]
config.environment["PATH"] = os.pathsep.join(path)
for var in ["HOME", "PYTHONPATH", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"]:
    if var in os.environ:
        config.environment[var] = os.environ[var]

python = getattr(config, "python_executable", "") or sys.executable
if not python or "@" in python:
    python = shutil.which("python3") or sys.executable
config.substitutions.append(("%python", python))
config.substitutions.append(("%models", os.path.join(config.test_source_root, "models")))
config.substitutions.append(("%fixtures", os.path.join(config.test_source_root, "fixtures")))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
config.substitutions.append(("%build", config.weft_obj_root))
config.substitutions.append(("%src", config.weft_src_root))
# This lit, for tests that run a nested one on the suite's own configuration.
config.substitutions.append(
    ("%lit", " ".join(shlex.quote(a) for a in
                      [sys.executable, os.path.abspath(sys.argv[0])])))
config.substitutions.append(("%llvm_tools", config.llvm_tools_dir))

# Why each optional feature is missing, for the required-features check at
# the end.
missing_why = {}

# MPI: tests that launch weft-run under mpirun need a weft built with MPI
# and an mpirun (CI runs as root, and the machine may have fewer cores than
# ranks).
mpirun = shutil.which("mpirun")
if getattr(config, "weft_have_mpi", "OFF") not in ("ON", "1", "TRUE"):
    missing_why["mpi"] = ("weft was built without MPI (WEFT_HAVE_MPI is off: "
                          "WEFT_ENABLE_MPI off or no MPI found; scripts/setup "
                          "installs libopenmpi-dev)")
elif not mpirun:
    missing_why["mpi"] = ("weft is built with MPI but there is no mpirun on "
                          "PATH (scripts/setup installs openmpi-bin)")
else:
    config.available_features.add("mpi")
    config.substitutions.append(
        ("%mpirun", mpirun + " --allow-run-as-root --oversubscribe"))
# GPU kernel generation: a weft built with the CUDA toolkit (NVRTC); no GPU
# needed.
if getattr(config, "weft_enable_cuda", "OFF") in ("ON", "1", "TRUE"):
    config.available_features.add("cuda-codegen")
    # The same option builds weft-calibrate (tools/CMakeLists.txt): the
    # feature follows the option, not the file, so a CUDA build that lost
    # the tool fails calibrate.test instead of skipping it.
    config.available_features.add("weft-calibrate")
else:
    for feature in ("cuda-codegen", "weft-calibrate"):
        missing_why[feature] = ("weft was built without the CUDA toolkit "
                                "(WEFT_ENABLE_CUDA is off)")
for var in ["TMPDIR", "OMPI_MCA_btl_vader_single_copy_mechanism"]:
    if var in os.environ:
        config.environment[var] = os.environ[var]
# Slurm: tests that submit batch jobs start a private Slurm of their own
# (test/slurm/local-slurm: munged, slurmctld and two slurmd on this host,
# as root, like CI); Debian's slurmctld, slurmd, slurm-client and munge.
sbin_path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
slurm_missing = [t for t in ["slurmctld", "slurmd", "sbatch", "munged"]
                 if not shutil.which(t, path=sbin_path)]
if slurm_missing:
    missing_why["slurm"] = (
        "no " + ", ".join(slurm_missing) + " on PATH, /usr/sbin or /sbin "
        "(scripts/setup installs slurmctld, slurmd, slurm-client and munge)")
elif os.geteuid() != 0:
    missing_why["slurm"] = ("not running as root (test/slurm/local-slurm "
                            "starts its daemons as root)")
else:
    config.available_features.add("slurm")
config.substitutions.append(
    ("%local-slurm",
     os.path.join(config.test_source_root, "slurm", "local-slurm")))

# Fuzzing: scripts/fuzz builds its targets with clang-22 and libFuzzer
# (scripts/setup installs clang-22, libclang-rt-22-dev, libfuzzer-22-dev).
fuzzer_lib = "/usr/lib/llvm-22/lib/clang/22/lib/linux/libclang_rt.fuzzer-x86_64.a"
if not shutil.which("clang++-22"):
    missing_why["libfuzzer"] = "no clang++-22 on PATH (scripts/setup installs clang-22)"
elif not os.path.exists(fuzzer_lib):
    missing_why["libfuzzer"] = ("no libFuzzer (%s; scripts/setup installs "
                                "libfuzzer-22-dev)" % fuzzer_lib)
else:
    config.available_features.add("libfuzzer")

# Required features: tests whose feature is missing would be UNSUPPORTED,
# which lit reports as success. CI (CI=true, as CI services set it) must run
# them, since scripts/setup installs what they need and the CUDA toolkit
# comes with the machine: there, a missing one stops lit with an error that
# names it and why. WEFT_REQUIRE_FEATURES, when set, names the features to
# require instead (comma- or space-separated; empty for none), in or out of
# CI.
CI_REQUIRED_FEATURES = ["mpi", "slurm", "cuda-codegen", "libfuzzer"]
if "WEFT_REQUIRE_FEATURES" in os.environ:
    required_by = "WEFT_REQUIRE_FEATURES"
    required = os.environ["WEFT_REQUIRE_FEATURES"].replace(",", " ").split()
elif os.environ.get("CI", "").lower() in ("true", "1", "yes"):
    required_by = "CI=" + os.environ["CI"]
    required = CI_REQUIRED_FEATURES
else:
    required_by, required = None, []
missing = [f for f in required if f not in config.available_features]
if missing:
    lit_config.fatal(
        "%s requires the test features %s; missing: %s. The tests that need "
        "%s would pass as UNSUPPORTED without running. Install what is "
        "missing (scripts/setup), or set WEFT_REQUIRE_FEATURES to the "
        "features this machine must have (empty for none)." % (
            required_by, ", ".join(required),
            "; ".join("%s: %s" % (f, missing_why.get(f, "not available"))
                      for f in missing),
            "it" if len(missing) == 1 else "them"))
