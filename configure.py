#!/usr/bin/env python3
"""Configure loom: detect the toolchain and optional dependencies, print what
was found and what is therefore built, and write <build-dir>/build.ninja
(from build.ninja.in) and compile_commands.json.

    .venv/bin/python configure.py                 # release build in build/
    .venv/bin/python configure.py --mode debug --build-dir build-debug
    .venv/bin/python configure.py --sanitize address,undefined --build-dir build-asan
    .venv/bin/python configure.py --without-cuda

Needs Python 3 and Jinja2 (tools/bootstrap.sh installs both). A missing
optional dependency turns its part off and says so; a missing required one
stops here with the package to install.
"""
from __future__ import annotations

import argparse
import platform
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OPTIONAL = ["cuda", "cublas", "cudnn", "nccl", "nvrtc", "openblas", "dnnl", "zmq", "mpi", "gtest", "python",
            "ccache"]


@dataclass
class Found:
    name: str
    ok: bool
    version: str = ""
    detail: str = ""
    use: str = ""
    info: dict = field(default_factory=dict)


def fail(message: str) -> None:
    print(f"configure.py: error: {message}", file=sys.stderr)
    sys.exit(1)


def run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def header_define(path: Path, names: list[str]) -> str:
    text = path.read_text(errors="replace")
    parts = []
    for n in names:
        m = re.search(rf"#define\s+{n}\s+(\d+)", text)
        parts.append(m.group(1) if m else "?")
    return ".".join(parts)


def first(paths) -> Path | None:
    return next((Path(p) for p in paths if Path(p).exists()), None)


def pkg_config(name: str, path: str | None = None) -> tuple[str, str, str] | None:
    """(version, cflags, libs) of a pkg-config package; `path` searches a
    directory first (PKG_CONFIG_PATH)."""
    env = dict(os.environ, PKG_CONFIG_PATH=path) if path else None
    if not shutil.which("pkg-config") or subprocess.run(["pkg-config", "--exists", name], env=env).returncode:
        return None
    query = lambda flag: subprocess.run(["pkg-config", flag, name], env=env, capture_output=True,
                                        text=True).stdout.strip()
    return query("--modversion"), query("--cflags"), query("--libs")


# ---------------------------------------------------------------- detection

def find_cxx(requested: str | None) -> Found:
    for cand in [requested, os.environ.get("CXX"), "g++", "c++", "clang++"]:
        if cand and shutil.which(cand):
            version = run([cand, "--version"]).splitlines()[0]
            # A toolchain that finds only libstdc++.a links a private copy
            # into libloom.so and the Python extension; two copies in one
            # process crash when they format messages.
            shared = run([cand, "-print-file-name=libstdc++.so"]).strip()
            if "clang" not in version and not os.path.isabs(shared):
                print(f"configure.py: warning: {cand} finds no shared libstdc++ (only a static one): "
                      "pass --cxx with a compiler that does (e.g. /usr/bin/g++)", file=sys.stderr)
            return Found("C++ compiler", True, version, shutil.which(cand), "everything",
                         {"path": shutil.which(cand)})
    fail("no C++ compiler found: install g++ (apt-get install g++) or set CXX")


def find_python() -> Found:
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").exists():
        return Found("Python headers", False, sys.version.split()[0],
                     f"no Python.h in {include} (apt-get install python3-dev)", "Python extension")
    return Found("Python", True, sys.version.split()[0], sys.executable, "Python extension",
                 {"include": str(include), "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX")})


def find_module(name: str, use: str) -> Found:
    try:
        mod = __import__(name)
    except ImportError:
        return Found(name, False, detail=f"not importable by {sys.executable}", use=use)
    return Found(name, True, getattr(mod, "__version__", "?"), os.path.dirname(mod.__file__), use)


def find_nanobind() -> Found:
    try:
        import nanobind
    except ImportError:
        return Found("nanobind", False, detail="pip install nanobind (tools/bootstrap.sh does)",
                     use="Python extension")
    return Found("nanobind", True, nanobind.__version__, nanobind.include_dir(), "Python extension",
                 {"include": nanobind.include_dir(), "src": nanobind.source_dir(),
                  "robin_map": str(Path(nanobind.source_dir()).parent / "ext" / "robin_map" / "include")})


def cuda_home() -> Path | None:
    for cand in [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]:
        if cand and (Path(cand) / "bin" / "nvcc").exists():
            return Path(cand)
    nvcc = shutil.which("nvcc")
    if nvcc:
        return Path(nvcc).resolve().parent.parent
    return first(["/usr/local/cuda"])


def find_cuda(archs: list[str]) -> dict[str, Found]:
    home = cuda_home()
    out = {}
    if home is None or not (home / "bin" / "nvcc").exists():
        out["cuda"] = Found("CUDA toolkit", False, detail="no nvcc (set CUDA_HOME)", use="GPU kernels")
        return out
    m = re.search(r"release ([\d.]+)", run([str(home / "bin" / "nvcc"), "--version"]))
    include, lib = home / "include", home / "lib64"
    out["cuda"] = Found("CUDA toolkit", True, m.group(1) if m else "?", str(home),
                        f"GPU kernels for sm_{', sm_'.join(archs)}",
                        {"home": str(home), "include": str(include), "lib": str(lib)})
    extra_inc = [include, Path("/usr/include"), Path("/usr/include/x86_64-linux-gnu")]
    h = first([home / "include/cublas_api.h"])
    out["cublas"] = Found("cuBLAS", bool(h and first([lib / "libcublas.so"])),
                          header_define(h, ["CUBLAS_VER_MAJOR", "CUBLAS_VER_MINOR", "CUBLAS_VER_PATCH"]) if h else "",
                          str(lib), "GPU matmul")
    # cuDNN: the nvidia-cudnn-cu13 wheel of this Python first (the one torch
    # loads; torch refuses an older cuDNN loaded before it), else the
    # toolkit's or the system's. libloom does not link it:
    # runtime/kernels/cuda/cudnn_api.cc opens it on first use (a cuDNN
    # already loaded, or this path).
    wheel = Path(sysconfig.get_paths()["purelib"]) / "nvidia" / "cudnn"
    places = [(wheel / "include", wheel / "lib"), (include, lib),
              (Path("/usr/include"), Path("/usr/lib/x86_64-linux-gnu")),
              (Path("/usr/include/x86_64-linux-gnu"), Path("/usr/lib/x86_64-linux-gnu"))]
    found = next(((inc, so) for inc, libdir in places if (inc / "cudnn_version.h").exists()
                  for so in (libdir / "libcudnn.so", libdir / "libcudnn.so.9") if so.exists()), None)
    out["cudnn"] = Found("cuDNN", found is not None,
                         header_define(found[0] / "cudnn_version.h", ["CUDNN_MAJOR", "CUDNN_MINOR",
                                                                       "CUDNN_PATCHLEVEL"]) if found else "",
                         str(found[1]) if found else "no cudnn_version.h with libcudnn.so beside it",
                         "GPU convolution (opened on first use)",
                         {"include": str(found[0]), "library": str(found[1])} if found else {})
    # NCCL: the nvidia-nccl-cu13 wheel of this Python first (the one torch
    # loads: two different libnccl.so.2 in one process clash), else the
    # toolkit's or the system's. libloom does not link it: comm/nccl_comm.cc
    # opens it on first use (an NCCL already loaded, or this path).
    wheel = Path(sysconfig.get_paths()["purelib"]) / "nvidia" / "nccl"
    places = [(wheel / "include", wheel / "lib"), (include, lib),
              (Path("/usr/include"), Path("/usr/lib/x86_64-linux-gnu"))]
    found = next(((inc, so) for inc, libdir in places if (inc / "nccl.h").exists()
                  for so in (libdir / "libnccl.so.2", libdir / "libnccl.so") if so.exists()), None)
    out["nccl"] = Found("NCCL", found is not None,
                        header_define(found[0] / "nccl.h", ["NCCL_MAJOR", "NCCL_MINOR", "NCCL_PATCH"]) if found else "",
                        str(found[1]) if found else "no nccl.h with libnccl.so beside it",
                        "GPU collectives (KVStore device/nccl)",
                        {"include": str(found[0]), "library": str(found[1])} if found else {})
    h = first([include / "nvrtc.h"])
    out["nvrtc"] = Found("NVRTC", bool(h and first([lib / "libnvrtc.so"])), out["cuda"].version if h else "",
                         str(lib), "fused GPU kernels compiled at run time")
    return out


def find_openblas() -> Found:
    # The OpenMP build first: it shares loom's OpenMP thread pool. The
    # pthread build keeps its own threads spinning after each GEMM, which on
    # a small machine starves the OpenMP loops that run next (a 256x512 sum
    # after a GEMM took 60x longer).
    for variant in ("openblas-openmp", None):
        path = None
        if variant:
            triplet = run(["gcc", "-print-multiarch"]).strip() if shutil.which("gcc") else ""
            path = f"/usr/lib/{triplet}/{variant}/pkgconfig"
            if not triplet or not Path(path).is_dir():
                continue
        pc = pkg_config("openblas", path)
        if pc:
            kind = "OpenMP" if variant else "its own threads"
            # rpath: the plain libopenblas.so.0 the loader would find is
            # whichever variant Debian's alternatives chose, not this one.
            rpath = " ".join(f"-Wl,-rpath,{flag[2:]}" for flag in pc[2].split() if flag.startswith("-L"))
            return Found("OpenBLAS", True, f"{pc[0]} ({kind})", pc[1] or "system",
                         "CPU matmul (kernel.requires: blas)", {"cflags": pc[1], "libs": f"{pc[2]} {rpath}"})
    return Found("OpenBLAS", False, detail="apt-get install libopenblas-dev", use="CPU matmul/conv")


def find_dnnl() -> Found:
    # oneDNN (Debian's libdnnl-dev): CPU convolution, when it is faster than
    # loom's im2col + GEMM (bench/bench_nn.py measures both; runtime/kernels/
    # cpu/conv_dnnl.cc says which shapes go where).
    header = first(Path(p) / "dnnl_version.h" for p in ("/usr/include/oneapi/dnnl", "/usr/local/include/oneapi/dnnl",
                                                        "/usr/include", "/usr/local/include"))
    lib = first(Path(p) / "libdnnl.so" for p in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                                                   "/usr/local/lib", "/usr/lib"))
    if not (header and lib):
        return Found("oneDNN", False, detail="apt-get install libdnnl-dev", use="CPU convolution")
    version = header_define(header, ["DNNL_VERSION_MAJOR", "DNNL_VERSION_MINOR", "DNNL_VERSION_PATCH"])
    return Found("oneDNN", True, version, str(lib), "CPU convolution", {"libs": f"-L{lib.parent} -ldnnl"})


def find_zmq() -> Found:
    pc = pkg_config("libzmq")
    if pc:
        return Found("ZeroMQ", True, pc[0], "libzmq", "multi-process transport (KVStore dist)",
                     {"cflags": pc[1], "libs": pc[2]})
    return Found("ZeroMQ", False, detail="apt-get install libzmq3-dev", use="multi-process transport")


def find_mpi() -> Found:
    pc = pkg_config("ompi-cxx") or pkg_config("ompi")
    if pc:
        return Found("Open MPI", True, pc[0], "ompi", "mpirun launcher, dist allreduce",
                     {"cflags": pc[1], "libs": pc[2]})
    return Found("Open MPI", False, detail="apt-get install libopenmpi-dev openmpi-bin",
                 use="mpirun launcher")


def find_json(extra: str | None) -> Found:
    # nlohmann/json (header only): the symbol JSON format (runtime/graph/graph_json.cc).
    dirs = ([extra] if extra else []) + ["/usr/include", "/usr/local/include"]
    header = first(Path(d) / "nlohmann" / "json.hpp" for d in dirs)
    if header is None:
        return Found("nlohmann-json", False, detail="apt-get install nlohmann-json3-dev (or --json-include DIR)",
                     use="symbol JSON (required)")
    macros = header.parent / "detail" / "abi_macros.hpp"  # where 3.11+ defines the version
    version = header_define(macros if macros.exists() else header, ["NLOHMANN_JSON_VERSION_MAJOR", "NLOHMANN_JSON_VERSION_MINOR",
                                     "NLOHMANN_JSON_VERSION_PATCH"])
    return Found("nlohmann-json", True, version, str(header.parent.parent), "symbol JSON",
                 {"include": str(header.parent.parent)})


def find_gtest() -> Found:
    inc = first(["/usr/include/gtest/gtest.h", "/usr/local/include/gtest/gtest.h"])
    lib = first(f"{d}/libgtest.{ext}" for d in ["/usr/lib/x86_64-linux-gnu", "/usr/lib", "/usr/local/lib",
                                               "/usr/lib/aarch64-linux-gnu"] for ext in ["a", "so"])
    if inc and lib:
        version = run(["dpkg-query", "-W", "-f=${Version}", "libgtest-dev"]).strip() or "?"
        return Found("GoogleTest", True, version, str(lib.parent), "C++ tests", {"libdir": str(lib.parent)})
    return Found("GoogleTest", False, detail="apt-get install libgtest-dev", use="C++ tests")


# ---------------------------------------------------------------- output

def print_table(found: list[Found], enabled: dict[str, bool]) -> None:
    rows = [("component", "status", "version", "where / why", "used for")]
    for f in found:
        state = "missing" if not f.ok else ("enabled" if enabled.get(f.name, True) else "disabled")
        if not f.ok and f.detail.startswith("--without"):
            state = "disabled"
        rows.append((f.name, state, f.version, f.detail, f.use))
    widths = [min(max(len(r[i]) for r in rows), 48) for i in range(5)]
    for i, r in enumerate(rows):
        print("  ".join(c[:48].ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def link_into_venv(build_dir: Path) -> str:
    """Puts the source and build halves of the `loom` package on the active
    virtualenv's path (a .pth file), so `import loom` works from anywhere."""
    if sys.prefix == sys.base_prefix:
        return "not in a virtualenv: set PYTHONPATH=runtime/python:<build>/python to import loom"
    site = Path(sysconfig.get_paths()["purelib"])
    write_if_changed(site / "loom.pth", f"{ROOT / 'runtime' / 'python'}\n{build_dir / 'python'}\n")
    return f"{site / 'loom.pth'} -> {build_dir / 'python'}"


def cpu_flags() -> set[str]:
    """The feature flags of this machine's CPU (empty where /proc/cpuinfo is absent)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build")
    p.add_argument("--mode", choices=["release", "debug"], default="release")
    p.add_argument("--sanitize", default="", help="address,undefined  or  thread")
    p.add_argument("--cuda-arch", default="80,90", help="comma-separated SM versions (default 80,90)")
    p.add_argument("--cxx", default=None)
    p.add_argument("--json-include", default=None, help="a directory holding nlohmann/json.hpp")
    p.add_argument("--quiet", action="store_true", help="print only problems")
    p.add_argument("--avx2", action=argparse.BooleanOptionalAction, default=None,
                   help="also build every CPU kernel for AVX2+FMA, chosen at run time on CPUs that have it "
                        "(default: on for x86-64; a sanitizer build keeps only the widest this CPU runs)")
    p.add_argument("--avx512", action=argparse.BooleanOptionalAction, default=None,
                   help="also build every CPU kernel for AVX-512 (F, VL, BW, DQ), chosen at run time on CPUs that "
                        "have it (default: on with --avx2)")
    p.add_argument("--link-venv", action=argparse.BooleanOptionalAction, default=None,
                   help="point the virtualenv's `import loom` at this build (default: only for build/)")
    for dep in OPTIONAL:
        p.add_argument(f"--without-{dep}", action="store_true", help=f"do not use {dep}")
    args = p.parse_args()

    sanitizers = [s for s in args.sanitize.split(",") if s]
    if set(sanitizers) - {"address", "undefined", "thread"}:
        fail(f"--sanitize takes address, undefined and thread, not {args.sanitize}")
    if "thread" in sanitizers and "address" in sanitizers:
        fail("--sanitize thread cannot be combined with address")
    build_dir = (ROOT / args.build_dir).resolve() if not Path(args.build_dir).is_absolute() else Path(args.build_dir)
    archs = [a.strip().removeprefix("sm_") for a in args.cuda_arch.split(",") if a.strip()]

    try:
        import jinja2
    except ImportError:
        fail(f"Jinja2 is required: run tools/bootstrap.sh, or `pip install jinja2` for {sys.executable}")
    if not shutil.which("ninja"):
        fail("ninja is required: apt-get install ninja-build")
    for required in ("yaml",):
        try:
            __import__(required)
        except ImportError:
            fail(f"PyYAML is required by the generator: run tools/bootstrap.sh or pip install pyyaml")

    cxx = find_cxx(args.cxx)
    python = find_python()
    nanobind = find_nanobind()
    numpy = find_module("numpy", "Python tests, nd.array")
    cuda = find_cuda(archs) if not args.without_cuda else {
        "cuda": Found("CUDA toolkit", False, detail="--without-cuda", use="GPU kernels")}
    openblas, dnnl, zmq, mpi, gtest = find_openblas(), find_dnnl(), find_zmq(), find_mpi(), find_gtest()
    json_lib = find_json(args.json_include)
    if not json_lib.ok:
        fail(f"nlohmann-json is required (the symbol JSON format): {json_lib.detail}")
    ccache = Found("ccache", bool(shutil.which("ccache")), detail=shutil.which("ccache") or "apt-get install ccache",
                   use="faster rebuilds")
    found = [cxx, python, nanobind, numpy, json_lib, *cuda.values(), openblas, dnnl, zmq, mpi, gtest, ccache]

    def on(dep: str, f: Found) -> bool:
        return f.ok and not getattr(args, f"without_{dep}")

    with_cuda = on("cuda", cuda["cuda"])
    if with_cuda and "thread" in sanitizers:
        with_cuda = False  # TSan cannot see into the CUDA runtime; the engine's TSan run is CPU-only
    with_python = on("python", python) and nanobind.ok
    # A second, AVX2+FMA build of each CPU kernel, picked at run time.
    with_avx2 = args.avx2 if args.avx2 is not None else platform.machine() in ("x86_64", "AMD64")
    # ...and an AVX-512 one: twice the lanes for compute-bound loops (exp, tanh).
    with_avx512 = with_avx2 and (args.avx512 if args.avx512 is not None else True)
    if sanitizers and args.avx2 is None and args.avx512 is None:
        # A sanitizer build only runs its tests here, and they only ever reach
        # the widest kernel build this CPU dispatches to: compiling the others
        # would cost CI two thirds of the kernel files for no coverage.
        flags = cpu_flags()
        with_avx512 = with_avx512 and {"avx512f", "avx512vl", "avx512bw", "avx512dq"} <= flags
        with_avx2 = with_avx2 and not with_avx512 and {"avx2", "fma", "f16c"} <= flags
    # Per extra build: the object suffix and the compiler flags (LOOM_CPU_ISA_BUILD
    # makes the generated file define <op>_cpu_<isa> instead of the dispatcher).
    cpu_isas = ([("avx2", "-mavx2 -mfma -mf16c -ffp-contract=fast -DLOOM_CPU_ISA_AVX2 -DLOOM_CPU_ISA_BUILD")]
                if with_avx2 else [])
    if with_avx512:
        cpu_isas.append(("avx512", "-mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx2 -mfma -mf16c "
                                   "-mprefer-vector-width=512 -ffp-contract=fast -DLOOM_CPU_ISA_AVX512 "
                                   "-DLOOM_CPU_ISA_BUILD"))
    enabled = {
        "CUDA toolkit": with_cuda, "Python": with_python, "nanobind": with_python,
        "OpenBLAS": on("openblas", openblas),
        # TSan cannot follow oneDNN's JIT code and OpenMP runtime; its run is for the engine
        "oneDNN": on("dnnl", dnnl) and "thread" not in sanitizers, "ZeroMQ": on("zmq", zmq) and "thread" not in sanitizers,  # libzmq's own threads are invisible to TSan
        "Open MPI": on("mpi", mpi) and not sanitizers,  # MPI's runtime is not built for ASan/TSan
        "GoogleTest": on("gtest", gtest), "ccache": on("ccache", ccache),
    }
    for key, dep in [("cublas", "cuBLAS"), ("cudnn", "cuDNN"), ("nccl", "NCCL"), ("nvrtc", "NVRTC")]:
        if key in cuda:
            enabled[dep] = with_cuda and on(key, cuda[key])
    if not args.quiet:
        print(f"loom configure: {args.mode} build in {build_dir}"
              + (f", sanitizers: {','.join(sanitizers)}" if sanitizers else ""))
        print_table(found, enabled)
        extra = " + ".join(name.upper() for name, _ in cpu_isas)
        print(f"  CPU kernels: baseline{' + ' + extra + ' (run-time dispatch)' if cpu_isas else ' only'}")

    # The generator tells which files each spec yields; a spec error stops here.
    listing = subprocess.run([sys.executable, "-m", "generator", "--root", str(ROOT), "--list"],
                             cwd=ROOT, capture_output=True, text=True)
    if listing.returncode:
        fail(listing.stderr.strip().removeprefix("error: ") or "the generator failed")
    ops = json.loads(listing.stdout)

    launcher = shutil.which("ccache") + " " if enabled["ccache"] else ""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    sources = lambda d, pattern: sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / d).rglob(pattern))
    context = {
        "root": str(ROOT), "build_dir": str(build_dir), "python": sys.executable, "mode": args.mode,
        "sanitizers": ",".join(sanitizers), "cxx": launcher + cxx.info["path"],
        # The C compiler beside the C++ one (g++ -> gcc), for the C API test.
        "cc": launcher + (shutil.which(re.sub(r"(g|c|clang)\+\+", lambda m: {"g": "gcc", "c": "cc", "clang": "clang"}[m.group(1)],
                                              Path(cxx.info["path"]).name)) or "cc"),
        "with_cuda": with_cuda, "with_avx2": with_avx2, "with_avx512": with_avx512, "cpu_isas": cpu_isas, "with_python": with_python, "with_gtest": enabled["GoogleTest"],
        "json_include": json_lib.info["include"],
        # Build options that kernel.requires in opdefs/ names (generator/model.py: REQUIREMENTS).
        "with_dnnl": enabled["oneDNN"], "dnnl": dnnl.info if enabled["oneDNN"] else {},
        "with_blas": enabled["OpenBLAS"], "blas": openblas.info if enabled["OpenBLAS"] else {},
        "with_zmq": enabled["ZeroMQ"], "zmq": zmq.info if enabled["ZeroMQ"] else {},
        "with_mpi": enabled["Open MPI"], "mpi": mpi.info if enabled["Open MPI"] else {},
        "with_cublas": bool(enabled.get("cuBLAS")), "with_cudnn": bool(enabled.get("cuDNN")),
        "with_nvrtc": bool(enabled.get("NVRTC")),
        "cudnn": cuda["cudnn"].info if enabled.get("cuDNN") else {},
        "with_nccl": bool(enabled.get("NCCL")), "nccl": cuda["nccl"].info if enabled.get("NCCL") else {},
        "runtime_cuda_sources": sources("runtime", "*.cu") if with_cuda else [],
        "cuda": cuda["cuda"].info, "nvcc": (launcher + cuda["cuda"].info["home"] + "/bin/nvcc") if with_cuda else "",
        "cuda_archs": archs,
        "python_info": python.info, "nanobind": nanobind.info,
        "microkernel_sources": [s for s in sources("microkernel", "*.cc") if not s.endswith(("gpu_cuda.cc", "gpu_none.cc"))],
        "runtime_sources": [s for s in sources("runtime", "*.cc") if "/python/" not in s],
        # Hand-written CPU kernels built a second time for AVX2+FMA (run-time dispatch).
        "runtime_isa_sources": sources("runtime/kernels/cpu/isa", "*.cc") if cpu_isas else [],
        "python_sources": sources("runtime/python", "*.cc"),
        "cpp_test_sources": sources("tests/cpp", "*.cc"),
        "microkernel_test_sources": sources("tests/cpp/microkernel", "*.cc"),
        "spec_files": ops["files"], "op_names": ops["ops"],
        # impl ops have hand-written kernels under runtime/, no generated kernel files
        "op_kinds": {n: k for f in ops["files"].values() for n, k in zip(f["ops"], f["kinds"])},
        "index_outputs": ops["index_outputs"], "manifest_output": ops["manifest_output"],
        # The generator's own modules and templates (not its tests): editing
        # any of them regenerates every op, as it may change any output.
        "generator_sources": sorted(p.relative_to(ROOT).as_posix() for p in
                                    [*(ROOT / "generator").glob("*.py"), *(ROOT / "generator/templates").glob("*.j2")]),
        "configure_args": " ".join(sys.argv[1:]),
        # Adding or removing a file changes its directory's mtime: listing
        # every source directory makes ninja re-run configure then.
        "source_dirs": sorted(d.relative_to(ROOT).as_posix() for top in
                              ("opdefs", "runtime", "microkernel", "tests/cpp", "generator")
                              for d in [ROOT / top, *(ROOT / top).rglob("*")]
                              if d.is_dir() and "__pycache__" not in d.parts
                              and not d.relative_to(ROOT).as_posix().startswith(
                                  # no compiled sources there, and the build itself writes
                                  # runtime/python/loom/nd.pyi (the manifest step)
                                  ("generator/tests", "runtime/python/loom"))),
    }
    text = env.get_template("build.ninja.in").render(context)
    build_dir.mkdir(parents=True, exist_ok=True)
    # Always (re)written, even when unchanged: ninja's regeneration rule
    # needs build.ninja newer than its inputs afterwards.
    (build_dir / "build.ninja").write_text(text)
    compdb = run(["ninja", "-C", str(build_dir), "-t", "compdb", "cxx", "cxx_python", "nvcc"])
    if compdb:
        write_if_changed(build_dir / "compile_commands.json", compdb)
    link = args.link_venv if args.link_venv is not None else build_dir == ROOT / "build"
    linked = link_into_venv(build_dir) if with_python and link and not sanitizers else ""
    if not args.quiet:
        print(f"\nwrote {build_dir / 'build.ninja'} and compile_commands.json "
              f"({len(ops['ops'])} operators from {len(ops['files'])} spec files)")
        if linked:
            print(f"python: {linked}")
        print(f"next: ninja -C {os.path.relpath(build_dir)}   (targets: all, check, demo, bench)")


if __name__ == "__main__":
    main()
