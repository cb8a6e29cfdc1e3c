"""lm.runtime: what the build has (MXNet's mx.runtime.Features), checked
against the parts of loom that know it independently."""
import subprocess
import sys

import pytest

import loom as lm

NAMES = ["CUDA", "CUBLAS", "CUDNN", "NVRTC", "OPENBLAS", "ONEDNN", "AVX2_KERNELS", "AVX512_KERNELS", "CPU_AVX2",
         "CPU_AVX512", "ZMQ", "MPI", "NCCL", "GPUS"]


def test_every_feature_is_listed_once_in_order():
    assert [f.name for f in lm.runtime.feature_list()] == NAMES
    assert list(lm.runtime.Features()) == NAMES


def test_features_agree_with_what_the_rest_of_loom_reports():
    f = lm.runtime.Features()
    assert f.is_enabled("CUDA") == lm._C.built_with_cuda
    assert f.is_enabled("cudnn") == lm._C.built_with_cudnn  # names are case-insensitive
    assert f.is_enabled("ZMQ") == lm._C.comm.available()
    assert f.is_enabled("MPI") == lm._C.comm.mpi_available()
    assert f.is_enabled("NCCL") == lm._C.comm.nccl_available()
    assert f.is_enabled("GPUS") == (lm.num_gpus() > 0)
    # The CPU uses a kernel width only if it was built.
    assert not f.is_enabled("CPU_AVX2") or f.is_enabled("AVX2_KERNELS")
    assert not f.is_enabled("CPU_AVX512") or f.is_enabled("AVX512_KERNELS")
    # A CUDA library without CUDA cannot be.
    if not f.is_enabled("CUDA"):
        assert not any(f.is_enabled(n) for n in ("CUBLAS", "CUDNN", "NVRTC", "GPUS"))


def test_an_unknown_feature_is_an_error_listing_the_known_ones():
    with pytest.raises(RuntimeError, match=r"no feature named 'TPU'; known: CUDA, CUBLAS"):
        lm.runtime.Features().is_enabled("TPU")


def test_the_command_line_prints_one_row_per_feature():
    done = subprocess.run([sys.executable, "-m", "loom.runtime"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = done.stdout.strip().splitlines()
    assert [r.split()[0] for r in rows] == NAMES
    assert all(r.split()[1] in ("yes", "no") for r in rows)
    assert repr(lm.runtime.Features()).startswith("[")
