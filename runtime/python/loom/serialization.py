"""lm.nd.save / lm.nd.load: NDArrays to and from a file (format in
docs/ndarray-format.md).

A file holds a list or a str-keyed dict of arrays. Every field is
little-endian and length-prefixed, each array's bytes are followed by their
CRC-32, and the whole file ends with a CRC-32 of everything before it, so a
truncated or corrupted file raises LoomValueError naming the file and what
is wrong — never returns garbage."""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from loom import _C
from loom.errors import LoomError

NDArray = _C.NDArray
MAGIC = b"LOOMND\x00\x01"   # format name and version 1
_DTYPES = ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int32", "int64", "bool"]


def _value_error(path, message):
    from loom import errors
    return errors.LoomValueError(f"load: {os.fspath(path)}: {message}")


def save(path, data) -> None:
    """Writes a list/tuple of NDArrays, or a dict of str -> NDArray."""
    if isinstance(data, NDArray):
        data = [data]
    if isinstance(data, dict):
        items = list(data.items())
        if not all(isinstance(k, str) for k, _ in items):
            raise TypeError("save: dict keys must be str")
        keyed = True
    elif isinstance(data, (list, tuple)):
        items, keyed = [("", a) for a in data], False
    else:
        raise TypeError(f"save: expected an NDArray, a list of them or a dict str -> NDArray, got {type(data).__name__}")
    out = bytearray(MAGIC)
    out += struct.pack("<BQ", 1 if keyed else 0, len(items))
    for key, arr in items:
        if not isinstance(arr, NDArray):
            raise TypeError(f"save: entry {key!r} is a {type(arr).__name__}, not an NDArray")
        name = key.encode("utf-8")
        host = arr.asnumpy()
        raw = host.astype(host.dtype.newbyteorder("<"), copy=False).tobytes()
        out += struct.pack("<I", len(name)) + name
        out += struct.pack("<BB", _DTYPES.index(arr.dtype), arr.ndim)
        out += struct.pack(f"<{arr.ndim}q", *arr.shape)
        out += struct.pack("<Q", len(raw)) + raw + struct.pack("<I", zlib.crc32(raw))
    out += struct.pack("<I", zlib.crc32(bytes(out)))
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:   # written aside, then renamed: a crash never leaves half a file
        f.write(out)
    os.replace(tmp, path)


class _Reader:
    def __init__(self, path, blob: bytes):
        self.path, self.blob, self.pos = path, blob, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.blob):
            raise _value_error(self.path, f"truncated: {what} needs {n} bytes at offset {self.pos}, "
                                          f"the file has {len(self.blob)}")
        chunk = self.blob[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def load(path, ctx=None):
    """The list or dict that `save` wrote, as NDArrays (on `ctx`, default CPU)."""
    from loom import nd
    with open(path, "rb") as f:
        blob = f.read()
    r = _Reader(path, blob)
    if r.take(len(MAGIC), "the header") != MAGIC:
        raise _value_error(path, "not a loom NDArray file (bad magic or unsupported version)")
    if len(blob) < len(MAGIC) + 4 or zlib.crc32(blob[:-4]) != struct.unpack("<I", blob[-4:])[0]:
        # Locate the damage precisely if possible (truncation reads past the end).
        _parse(r, nd, ctx, path)
        raise _value_error(path, "checksum mismatch: the file is corrupted")
    return _parse(r, nd, ctx, path)


def _parse(r: _Reader, nd, ctx, path):
    keyed, count = r.unpack("<BQ", "the entry count")
    if keyed not in (0, 1) or count > len(r.blob):
        raise _value_error(path, "corrupted header")
    result = {} if keyed else []
    for i in range(count):
        (name_len,) = r.unpack("<I", f"entry {i}'s name length")
        name = r.take(name_len, f"entry {i}'s name").decode("utf-8", errors="replace")
        code, ndim = r.unpack("<BB", f"entry {i}'s dtype")
        if code >= len(_DTYPES):
            raise _value_error(path, f"entry {i} has unknown dtype code {code}")
        shape = r.unpack(f"<{ndim}q", f"entry {i}'s shape")
        (nbytes,) = r.unpack("<Q", f"entry {i}'s size")
        dtype = np.dtype(_DTYPES[code]) if _DTYPES[code] != "bfloat16" else None
        if dtype is None:
            raise _value_error(path, "bfloat16 arrays cannot be loaded yet")
        if any(d < 0 for d in shape) or nbytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise _value_error(path, f"entry {i} ({name!r}) has shape {shape} but {nbytes} bytes")
        raw = r.take(nbytes, f"entry {i}'s data")
        (crc,) = r.unpack("<I", f"entry {i}'s checksum")
        if zlib.crc32(raw) != crc:
            raise _value_error(path, f"entry {i} ({name!r}): checksum mismatch, the data is corrupted")
        arr = nd.array(np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape).astype(dtype),
                       dtype=_DTYPES[code], ctx=ctx)
        if keyed:
            result[name] = arr
        else:
            result.append(arr)
    return result


__all__ = ["save", "load", "LoomError"]
