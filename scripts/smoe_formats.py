"""Minimal writers (and, for checking them, readers) of GGUF v3 and safetensors, written from the
format descriptions, for tests and tools. Independent of the C++ code on purpose: they check its
readers.

Shapes are numpy's (outermost first); GGUF stores dimensions innermost first, so a (out, in)
array is written with ne = [in, out]. A .npy file is read with numpy.load.

GGUF v3 layout: "GGUF", u32 version, u64 tensor count, u64 metadata count; metadata entries
(string key, u32 value type, value); tensor infos (string name, u32 n_dims, u64 ne[n_dims],
u32 ggml type, u64 offset relative to the data section); padding to the alignment; data, each
tensor at an aligned offset. Strings are u64 length + UTF-8 bytes; an array is u32 element type,
u64 count, elements.

safetensors: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin,
end]}, "__metadata__": {...}} (offsets relative to the byte after the header), then the data.
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
_GGML = {"f32": (GGML_F32, 4), "f16": (GGML_F16, 2), "bf16": (GGML_BF16, 2)}


def _str(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def _value(t, v, elem=None):
    """elem: the element type of an ARRAY; for an array of arrays, a (type, elem) pair."""
    if t == STRING:
        return _str(v)
    if t == ARRAY:
        et, sub = (elem if isinstance(elem, tuple) else (elem, None))
        return struct.pack("<IQ", et, len(v)) + b"".join(_value(et, x, sub) for x in v)
    return struct.pack(_SCALAR[t], v)


def to_bf16(a):
    """float32 → bfloat16 bits (round to nearest even), as uint16."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def from_bf16(bits):
    return (np.asarray(bits).astype(np.uint32) << 16).view(np.float32)


def encode(a, dtype):
    """The bytes of float array `a` stored as f32, f16 or bf16."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "f32":
        return a.tobytes()
    if dtype == "f16":
        return a.astype(np.float16).tobytes()
    if dtype == "bf16":
        return to_bf16(a).tobytes()
    raise ValueError(f"unknown dtype {dtype!r}")


def round_trip(a, dtype):
    """The float32 values a tensor holds after being stored as `dtype`."""
    a = np.asarray(a, dtype=np.float32)
    if dtype == "f16":
        return a.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        return from_bf16(to_bf16(a)).reshape(a.shape)
    return a


class Lazy:
    """Tensor data made only when written: `chunks()` yields the bytes piece by piece (e.g. one
    expert at a time), so a multi-GB file is written with little memory."""

    def __init__(self, nbytes, chunks):
        self.nbytes, self.chunks = nbytes, chunks

    def __len__(self):
        return self.nbytes


class GGUFWriter:
    def __init__(self, alignment=ALIGN, alignment_key=True):
        self.alignment = alignment
        self.alignment_key = alignment_key or alignment != ALIGN  # absent means 32
        self.kv = []  # (key, type, value, elem)
        self.tensors = []  # (name, ggml_type, shape, bytes or Lazy)

    def add(self, key, t, value, elem=None):
        self.kv.append((key, t, value, elem))

    def u8(self, k, v): self.add(k, UINT8, int(v))
    def i8(self, k, v): self.add(k, INT8, int(v))
    def u16(self, k, v): self.add(k, UINT16, int(v))
    def i16(self, k, v): self.add(k, INT16, int(v))
    def u32(self, k, v): self.add(k, UINT32, int(v))
    def i32(self, k, v): self.add(k, INT32, int(v))
    def u64(self, k, v): self.add(k, UINT64, int(v))
    def i64(self, k, v): self.add(k, INT64, int(v))
    def f32(self, k, v): self.add(k, FLOAT32, float(v))
    def f64(self, k, v): self.add(k, FLOAT64, float(v))
    def string(self, k, v): self.add(k, STRING, v)
    def boolean(self, k, v): self.add(k, BOOL, bool(v))
    def array(self, k, elem, v): self.add(k, ARRAY, list(v), elem)
    def strings(self, k, v): self.add(k, ARRAY, list(v), STRING)
    def floats(self, k, v): self.add(k, ARRAY, [float(x) for x in v], FLOAT32)
    def ints(self, k, v): self.add(k, ARRAY, [int(x) for x in v], INT32)

    def tensor(self, name, array, dtype="f32"):
        a = np.asarray(array)
        self.tensors.append((name, _GGML[dtype][0], a.shape, encode(a, dtype)))

    def tensor_lazy(self, name, shape, dtype, make_chunks):
        """make_chunks() yields float arrays (or bytes already in `dtype`) whose concatenation
        (row-major) is the tensor."""
        t, size = _GGML[dtype]
        nbytes = int(np.prod(shape)) * size
        enc = lambda c: c if isinstance(c, bytes) else encode(c, dtype)  # noqa: E731
        self.tensors.append((name, t, tuple(shape), Lazy(nbytes, lambda: (enc(c) for c in make_chunks()))))

    def _pad(self, f, n):
        f.write(b"\0" * ((self.alignment - n % self.alignment) % self.alignment))

    def write(self, path):
        kv = list(self.kv)
        if self.alignment_key:
            kv.insert(0, ("general.alignment", UINT32, self.alignment, None))
        with open(path, "wb") as f:
            f.write(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(kv)))
            for key, t, v, elem in kv:
                f.write(_str(key) + struct.pack("<I", t) + _value(t, v, elem))
            off = 0
            for name, t, shape, data in self.tensors:
                ne = list(reversed(shape))
                f.write(_str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne))
                f.write(struct.pack("<IQ", t, off))
                off += (len(data) + self.alignment - 1) // self.alignment * self.alignment
            self._pad(f, f.tell())
            for _, _, _, data in self.tensors:
                if isinstance(data, Lazy):
                    n = 0
                    for chunk in data.chunks():
                        f.write(chunk)
                        n += len(chunk)
                    if n != data.nbytes:
                        raise ValueError(f"{path}: lazy tensor wrote {n} bytes, expected {data.nbytes}")
                else:
                    f.write(data)
                self._pad(f, len(data))


def write_safetensors(path, tensors, dtype="f32", keep_vectors_f32=False, metadata=None):
    """tensors: dict name → float array, stored as F32, F16 or BF16 (1-D ones stay F32 when
    keep_vectors_f32). Tensors are laid out in the dict's order."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, a in tensors.items():
        a = np.asarray(a)
        dt = "f32" if keep_vectors_f32 and a.ndim == 1 else dtype
        b = encode(a, dt)
        header[name] = {"dtype": dt.upper(), "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


# ---- Readers: used to check the writers (and by tools); small and strict. ----

_NP = {GGML_F32: np.float32, GGML_F16: np.float16}


class _Cursor:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take("<Q")
        s = bytes(self.buf[self.pos: self.pos + n])
        if len(s) != n:
            raise ValueError("string runs past the end of the file")
        self.pos += n
        return s.decode("utf-8")

    def value(self, t):
        if t == STRING:
            return self.string()
        if t == ARRAY:
            et, n = self.take("<IQ")
            return [self.value(et) for _ in range(n)]
        return self.take(_SCALAR[t])


def _gguf_layout(buf, path):
    """(metadata dict, [(name, shape, ggml type, absolute offset)]) of a GGUF v3 file's bytes."""
    c = _Cursor(buf)
    if bytes(buf[:4]) != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    c.pos = 4
    version, n_tensors, n_kv = c.take("<IQQ")
    if version != 3:
        raise ValueError(f"{path}: GGUF version {version}, expected 3")
    meta = {}
    for _ in range(n_kv):
        key = c.string()
        t = c.take("<I")
        meta[key] = (t, c.value(t))
    align = meta.get("general.alignment", (UINT32, ALIGN))[1]
    infos = []
    for _ in range(n_tensors):
        name = c.string()
        nd = c.take("<I")
        ne = [c.take("<Q") for _ in range(nd)]
        t, off = c.take("<IQ")
        if off % align:
            raise ValueError(f"{path}: tensor {name} at offset {off}, not a multiple of {align}")
        infos.append((name, tuple(reversed(ne)), t, off))
    base = (c.pos + align - 1) // align * align
    return meta, [(name, shape, t, base + off) for name, shape, t, off in infos]


def read_gguf(path):
    """Returns (metadata dict key → (type, value), tensors dict name → float32 array)."""
    buf = memoryview(np.fromfile(path, dtype=np.uint8))
    meta, infos = _gguf_layout(buf, path)
    tensors = {}
    for name, shape, t, start in infos:
        n = int(np.prod(shape))
        if t == GGML_BF16:
            bits = np.frombuffer(buf, np.uint16, n, start)
            tensors[name] = from_bf16(bits).reshape(shape)
        else:
            tensors[name] = np.frombuffer(buf, _NP[t], n, start).astype(np.float32).reshape(shape)
    return meta, tensors


# (values per block, bytes per block) of the ggml types read_gguf_raw sizes.
GGML_Q4_0, GGML_Q8_0 = 2, 8
_BLOCKS = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_BF16: (1, 2), GGML_Q4_0: (32, 18),
           GGML_Q8_0: (32, 34)}


def read_gguf_raw(path):
    """Returns (metadata, tensors dict name → (ggml type, shape, uint8 array of its bytes)), the
    bytes mapped from the file rather than read, so a large file costs little memory."""
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    meta, infos = _gguf_layout(memoryview(buf), path)
    tensors = {}
    for name, shape, t, start in infos:
        per, size = _BLOCKS[t]
        tensors[name] = (t, shape, buf[start: start + int(np.prod(shape)) // per * size])
    return meta, tensors


def dequantize_q8_0(raw, shape):
    """Q8_0 bytes (blocks of an f16 scale and 32 int8 values) → float32 array of `shape`."""
    blocks = np.asarray(raw).reshape(-1, 34)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    q = blocks[:, 2:].copy().view(np.int8).astype(np.float32)
    return (q * scale).reshape(shape)


def read_safetensors(path):
    """Returns (metadata dict, tensors dict name → float32 array), checking the offsets tile the
    data exactly."""
    raw = np.fromfile(path, dtype=np.uint8)
    n = struct.unpack_from("<Q", raw, 0)[0]
    header = json.loads(bytes(raw[8: 8 + n]))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors, spans = {}, []
    for name, e in header.items():
        b, end = e["data_offsets"]
        spans.append((b, end))
        chunk = data[b:end].tobytes()
        if e["dtype"] == "BF16":
            a = from_bf16(np.frombuffer(chunk, np.uint16))
        else:
            a = np.frombuffer(chunk, {"F32": np.float32, "F16": np.float16}[e["dtype"]]).astype(np.float32)
        tensors[name] = a.reshape(e["shape"])
    spans.sort()
    pos = 0
    for b, end in spans:
        if b != pos:
            raise ValueError(f"{path}: data offsets leave a gap or overlap at byte {pos}")
        pos = end
    if pos != len(data):
        raise ValueError(f"{path}: {len(data) - pos} bytes after the last tensor")
    return meta, tensors
