"""Devices, spelled as in MXNet: lm.cpu(), lm.gpu(0)."""
from loom import _C

Device = _C.Device


def cpu(device_id: int = 0) -> Device:
    """The host. Different ids name distinct logical devices sharing host
    memory, as in MXNet: arrays on cpu(0) and cpu(1) do not mix in one op,
    which lets data-parallel code (Parameters on several contexts, KVStore)
    run and be tested on one machine."""
    if int(device_id) < 0:
        raise ValueError(f"cpu: device_id must be >= 0, got {device_id}")
    return Device(_C.DeviceType.cpu, int(device_id))


def gpu(device_id: int = 0) -> Device:
    """GPU number `device_id`; using it without CUDA raises LoomNotImplementedError."""
    return Device(_C.DeviceType.gpu, int(device_id))


def num_gpus() -> int:
    """GPUs usable by this process (0 without CUDA, a driver or a device)."""
    return _C.gpu_count()
