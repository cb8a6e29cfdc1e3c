"""Devices, spelled as in MXNet: lm.cpu(), lm.gpu(0)."""
from loom import _C

Device = _C.Device


def cpu(device_id: int = 0) -> Device:
    """The host. `device_id` is accepted for MXNet compatibility and ignored."""
    return Device(_C.DeviceType.cpu, 0)


def gpu(device_id: int = 0) -> Device:
    """GPU number `device_id`; using it without CUDA raises LoomNotImplementedError."""
    return Device(_C.DeviceType.gpu, int(device_id))


def num_gpus() -> int:
    """GPUs usable by this process (0 without CUDA, a driver or a device)."""
    return _C.gpu_count()
