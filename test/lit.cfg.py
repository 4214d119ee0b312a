# lit configuration for weft's tests: dialects, passes, onnx import, tools.
import os
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

# MPI: tests that launch weft-run under mpirun need a weft built with MPI
# and an mpirun (CI runs as root, and the machine may have fewer cores than
# ranks).
mpirun = shutil.which("mpirun")
if getattr(config, "weft_have_mpi", "OFF") in ("ON", "1", "TRUE") and mpirun:
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
for var in ["TMPDIR", "OMPI_MCA_btl_vader_single_copy_mechanism"]:
    if var in os.environ:
        config.environment[var] = os.environ[var]
# Slurm: tests that submit batch jobs start a private Slurm of their own
# (test/slurm/local-slurm: munged, slurmctld and two slurmd on this host,
# as root, like CI); Debian's slurmctld, slurmd, slurm-client and munge.
sbin_path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
if os.geteuid() == 0 and all(
        shutil.which(t, path=sbin_path)
        for t in ["slurmctld", "slurmd", "sbatch", "munged"]):
    config.available_features.add("slurm")
config.substitutions.append(
    ("%local-slurm",
     os.path.join(config.test_source_root, "slurm", "local-slurm")))
