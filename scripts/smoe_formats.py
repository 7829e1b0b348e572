"""Minimal writers for GGUF v3 and safetensors, written from the format descriptions, for tests
and tools. Independent of the C++ code on purpose: they check its readers.

Shapes are numpy's (outermost first); GGUF stores dimensions innermost first, so a (out, in)
array is written with ne = [in, out].
"""
import json
import struct

import numpy as np

# GGUF metadata value types.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30
ALIGN = 32

_SCALAR = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
           FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}


def _str(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def _value(t, v, elem=None):
    if t == STRING:
        return _str(v)
    if t == ARRAY:
        out = struct.pack("<IQ", elem, len(v))
        return out + b"".join(_value(elem, x) for x in v)
    return struct.pack(_SCALAR[t], v)


def to_bf16(a):
    """float32 → bfloat16 bits (round to nearest even), as uint16."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def from_bf16(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


class GGUFWriter:
    def __init__(self):
        self.kv = []  # (key, type, value, elem)
        self.tensors = []  # (name, ggml_type, shape, bytes)

    def add(self, key, t, value, elem=None):
        self.kv.append((key, t, value, elem))

    def u32(self, k, v): self.add(k, UINT32, int(v))
    def f32(self, k, v): self.add(k, FLOAT32, float(v))
    def string(self, k, v): self.add(k, STRING, v)
    def boolean(self, k, v): self.add(k, BOOL, bool(v))
    def strings(self, k, v): self.add(k, ARRAY, list(v), STRING)
    def floats(self, k, v): self.add(k, ARRAY, [float(x) for x in v], FLOAT32)
    def ints(self, k, v): self.add(k, ARRAY, [int(x) for x in v], INT32)

    def tensor(self, name, array, dtype="f32"):
        a = np.ascontiguousarray(array, dtype=np.float32)
        if dtype == "f32":
            data, t = a.tobytes(), GGML_F32
        elif dtype == "f16":
            data, t = a.astype(np.float16).tobytes(), GGML_F16
        elif dtype == "bf16":
            data, t = to_bf16(a).tobytes(), GGML_BF16
        else:
            raise ValueError(dtype)
        self.tensors.append((name, t, a.shape, data))

    def write(self, path):
        kv = [("general.alignment", UINT32, ALIGN, None)] + self.kv
        with open(path, "wb") as f:
            f.write(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(kv)))
            for key, t, v, elem in kv:
                f.write(_str(key) + struct.pack("<I", t) + _value(t, v, elem))
            off = 0
            offsets = []
            for name, t, shape, data in self.tensors:
                ne = list(reversed(shape))
                f.write(_str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne))
                f.write(struct.pack("<IQ", t, off))
                offsets.append(off)
                off += (len(data) + ALIGN - 1) // ALIGN * ALIGN
            pos = f.tell()
            f.write(b"\0" * ((ALIGN - pos % ALIGN) % ALIGN))
            for _, _, _, data in self.tensors:
                f.write(data)
                f.write(b"\0" * ((ALIGN - len(data) % ALIGN) % ALIGN))


def write_safetensors(path, tensors, dtype="f32"):
    """tensors: dict name → float array, stored as F32, F16 or BF16 (vectors stay F32)."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        if dtype == "f32" or a.ndim == 1:
            b, st = a.tobytes(), "F32"
        elif dtype == "f16":
            b, st = a.astype(np.float16).tobytes(), "F16"
        else:
            b, st = to_bf16(a).tobytes(), "BF16"
        header[name] = {"dtype": st, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def round_trip(a, dtype):
    """The float32 values a tensor holds after being stored as `dtype`."""
    a = np.asarray(a, dtype=np.float32)
    if dtype == "f16":
        return a.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        return from_bf16(to_bf16(a)).reshape(a.shape)
    return a
