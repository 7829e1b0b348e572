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
# Quantized block types: name → (ggml type id, values per block, bytes per block).
QUANT = {"q4_0": (2, 32, 18), "q8_0": (8, 32, 34), "q2_k": (10, 256, 84), "q3_k": (11, 256, 110),
         "q4_k": (12, 256, 144), "q5_k": (13, 256, 176), "q6_k": (14, 256, 210)}


def block_info(dtype):
    """(ggml type id, values per block, bytes per block) of any type these writers know."""
    if dtype in _GGML:
        return _GGML[dtype][0], 1, _GGML[dtype][1]
    return QUANT[dtype]


def type_bytes(dtype, n):
    """Bytes of n values stored as `dtype` (n a multiple of its block size)."""
    _, bs, bb = block_info(dtype)
    if n % bs:
        raise ValueError(f"{dtype} needs whole blocks of {bs} values; got {n}")
    return n // bs * bb


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
    if dtype in QUANT:
        return quantize(a, dtype).tobytes()
    raise ValueError(f"unknown dtype {dtype!r}")


def round_trip(a, dtype):
    """The float32 values a tensor holds after being stored as `dtype`."""
    a = np.asarray(a, dtype=np.float32)
    if dtype == "f16":
        return a.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        return from_bf16(to_bf16(a)).reshape(a.shape)
    if dtype in QUANT:
        return dequantize(quantize(a, dtype), dtype).reshape(a.shape)
    return a


# ---- Quantized block types (GGUF layouts, as smoe's src/quant/blocks.h and dequantize.cpp define
# them). The quantizers are simple, vectorised and not error-optimal (one scale per sub-block
# from its range, no search): enough for random benchmark weights and test data. They are
# unbiased on symmetric data: the symmetric types (Q4_0, Q8_0, Q3_K, Q6_K) take the scale from
# the signed largest value, so x and −x quantize to mirror images; the types with a min (Q2_K,
# Q4_K, Q5_K) round the min and the scale up so that no value is clipped, then round to nearest.

def _f16(a):
    """float32 → float16, rounded up in magnitude (a scale that bounds its values must not shrink)."""
    h = np.asarray(a, np.float32).astype(np.float16)
    short = np.abs(h.astype(np.float32)) < np.abs(a)
    return np.where(short, np.nextafter(h, np.copysign(np.float16(np.inf), h)), h)


def _half_bytes(h, nb):
    return np.ascontiguousarray(h, "<f2").view(np.uint8).reshape(nb, 2)


def _div(x, d):
    """x / d with 0 where d is 0 (an all-zero group)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d != 0, x / np.where(d != 0, d, 1), 0).astype(np.float32)


def _signed_max(x):
    """The value of largest magnitude along the last axis, with its sign."""
    i = np.abs(x).argmax(-1)
    return np.take_along_axis(x, i[..., None], -1)[..., 0]


def _q_sym(x, nb, per_block):
    """Q4_0 / Q8_0: one f16 scale per block of 32."""
    if per_block == 18:
        d = _signed_max(x) / np.float32(-8)
        d16 = d.astype(np.float16)
        q = np.clip(np.rint(_div(x, d16.astype(np.float32)[:, None])) + 8, 0, 15).astype(np.uint8)
        out = np.empty((nb, 18), np.uint8)
        out[:, :2] = _half_bytes(d16, nb)
        out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
        return out
    d16 = (np.abs(x).max(-1) / np.float32(127)).astype(np.float16)
    q = np.clip(np.rint(_div(x, d16.astype(np.float32)[:, None])), -127, 127).astype(np.int8)
    out = np.empty((nb, 34), np.uint8)
    out[:, :2] = _half_bytes(d16, nb)
    out[:, 2:] = q.view(np.uint8)
    return out


def _fit_min(xs, nmax, smax):
    """x ≈ d·sc·q − dmin·m, q ∈ [0, nmax], sc and m ∈ [0, smax], for sub-blocks xs (nb, n_sub, len):
    the min and the scale rounded up so that the grid covers every value."""
    mn = -np.minimum(xs.min(-1), 0)
    dmin = _f16(mn.max(-1) / np.float32(smax))
    m = np.clip(np.ceil(_div(mn, dmin.astype(np.float32)[:, None])), 0, smax)
    ml = dmin.astype(np.float32)[:, None] * m
    scale = (xs.max(-1) + ml) / np.float32(nmax)
    d = _f16(scale.max(-1) / np.float32(smax))
    sc = np.clip(np.ceil(_div(scale, d.astype(np.float32)[:, None])), 0, smax)
    dl = d.astype(np.float32)[:, None] * sc
    q = np.clip(np.rint(_div(xs + ml[..., None], dl[..., None])), 0, nmax).astype(np.uint8)
    return d, dmin, sc.astype(np.uint8), m.astype(np.uint8), q


def _fit_sym(xs, nmax, smax):
    """x ≈ d·sc·q, q ∈ [−nmax, nmax − 1], sc ∈ [−smax, smax − 1]: signed largest value → −nmax."""
    scale = _signed_max(xs) / np.float32(-nmax)
    d = (_signed_max(scale) / np.float32(-smax)).astype(np.float16)
    sc = np.clip(np.rint(_div(scale, d.astype(np.float32)[:, None])), -smax, smax - 1)
    dl = d.astype(np.float32)[:, None] * sc
    q = np.clip(np.rint(_div(xs, dl[..., None])), -nmax, nmax - 1)
    return d, sc.astype(np.int8), (q + nmax).astype(np.uint8)


def _pack_2bit(q, nb):
    """Q2_K / Q3_K low bits: value y = 128·half + 32·j + k sits in bits 2j of qs[32·half + k]."""
    q = q.reshape(nb, 2, 4, 32)
    return (q[:, :, 0] | (q[:, :, 1] << 2) | (q[:, :, 2] << 4) | (q[:, :, 3] << 6)).reshape(nb, 64)


def _k4_scales(sc, m, nb):
    """The 12 bytes holding eight 6-bit scales and mins of a Q4_K / Q5_K block."""
    out = np.empty((nb, 12), np.uint8)
    out[:, 0:4] = sc[:, :4] | ((sc[:, 4:] >> 4) << 6)
    out[:, 4:8] = m[:, :4] | ((m[:, 4:] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:] & 0xF) | ((m[:, 4:] & 0xF) << 4)
    return out


def _quantize_blocks(x, dtype):
    nb = x.shape[0]
    if dtype in ("q4_0", "q8_0"):
        return _q_sym(x, nb, QUANT[dtype][2])
    if dtype == "q2_k":
        d, dmin, sc, m, q = _fit_min(x.reshape(nb, 16, 16), 3, 15)
        return np.concatenate([sc | (m << 4), _pack_2bit(q, nb), _half_bytes(d, nb),
                               _half_bytes(dmin, nb)], 1)
    if dtype == "q3_k":
        d, sc, q = _fit_sym(x.reshape(nb, 16, 16), 4, 32)
        q = q.reshape(nb, 2, 4, 32)
        hbit = (q >> 2).astype(np.uint8)
        hmask = np.zeros((nb, 32), np.uint8)
        for half in range(2):
            for j in range(4):
                hmask |= hbit[:, half, j] << (4 * half + j)
        s = (sc.astype(np.int16) + 32).astype(np.uint8)
        scales = np.empty((nb, 12), np.uint8)
        scales[:, :8] = (s[:, :8] & 0xF) | ((s[:, 8:] & 0xF) << 4)
        top = (s >> 4) & 3
        scales[:, 8:] = top[:, 0:4] | (top[:, 4:8] << 2) | (top[:, 8:12] << 4) | (top[:, 12:16] << 6)
        return np.concatenate([hmask, _pack_2bit(q & 3, nb), scales, _half_bytes(d, nb)], 1)
    if dtype in ("q4_k", "q5_k"):
        d, dmin, sc, m, q = _fit_min(x.reshape(nb, 8, 32), 15 if dtype == "q4_k" else 31, 63)
        q = q.reshape(nb, 4, 2, 32)
        qs = ((q[:, :, 0] & 0xF) | ((q[:, :, 1] & 0xF) << 4)).reshape(nb, 128)
        parts = [_half_bytes(d, nb), _half_bytes(dmin, nb), _k4_scales(sc, m, nb)]
        if dtype == "q5_k":
            hb = (q.reshape(nb, 8, 32) >> 4).astype(np.uint8)
            parts.append(np.bitwise_or.reduce(hb << np.arange(8, dtype=np.uint8)[None, :, None], axis=1))
        return np.concatenate(parts + [qs], 1)
    if dtype == "q6_k":
        d, sc, q = _fit_sym(x.reshape(nb, 16, 16), 32, 128)
        q = q.reshape(nb, 2, 4, 32)
        lo, hi = q & 0xF, q >> 4
        ql = np.concatenate([lo[:, :, 0] | (lo[:, :, 2] << 4), lo[:, :, 1] | (lo[:, :, 3] << 4)], 2)
        qh = hi[:, :, 0] | (hi[:, :, 1] << 2) | (hi[:, :, 2] << 4) | (hi[:, :, 3] << 6)
        return np.concatenate([ql.reshape(nb, 128), qh.reshape(nb, 64), sc.view(np.uint8),
                               _half_bytes(d, nb)], 1)
    raise ValueError(f"unknown quantized type {dtype!r}")


def quantize(a, dtype, piece=1 << 20):
    """Float values (a multiple of the block size) → the type's blocks, as a (blocks, bytes) uint8
    array. Works `piece` values at a time, so memory stays a few times the input."""
    _, bs, bb = QUANT[dtype]
    x = np.ascontiguousarray(a, np.float32).reshape(-1)
    if x.size % bs:
        raise ValueError(f"{dtype} needs whole blocks of {bs} values; got {x.size}")
    out = np.empty((x.size // bs, bb), np.uint8)
    step = max(1, piece // bs)
    for b0 in range(0, out.shape[0], step):
        blk = x[b0 * bs: (b0 + step) * bs].reshape(-1, bs)
        out[b0: b0 + blk.shape[0]] = _quantize_blocks(blk, dtype)
    return out


# Dequantizers: the loops of dequantize.cpp, vectorised over blocks.

def _h(raw):
    return np.ascontiguousarray(raw).view("<f2").astype(np.float32)[:, 0]


def _unpack_2bit(qs, nb):
    """Inverse of _pack_2bit: (nb, 64) bytes → (nb, 256) values 0..3 in y order."""
    q = qs.reshape(nb, 2, 1, 32) >> (2 * np.arange(4, dtype=np.uint8))[None, None, :, None]
    return (q & 3).reshape(nb, 256)


def _k4_unpack(s):
    """(nb, 12) → scales (nb, 8) and mins (nb, 8), as k4_scale_min reads them."""
    sc = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)], 1)
    m = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], 1)
    return sc.astype(np.float32), m.astype(np.float32)


def dequantize(raw, dtype):
    """The blocks of a quantized type (bytes or uint8 array) → float32 values (flat)."""
    _, bs, bb = QUANT[dtype]
    b = np.frombuffer(raw, np.uint8) if isinstance(raw, (bytes, memoryview)) else np.asarray(raw, np.uint8)
    b = b.reshape(-1, bb)
    nb = b.shape[0]
    if dtype == "q4_0":
        q = np.concatenate([b[:, 2:] & 0xF, b[:, 2:] >> 4], 1).astype(np.float32) - 8
        return (_h(b[:, 0:2])[:, None] * q).reshape(-1)
    if dtype == "q8_0":
        return (_h(b[:, 0:2])[:, None] * b[:, 2:].view(np.int8).astype(np.float32)).reshape(-1)
    if dtype == "q2_k":
        sc, q = b[:, 0:16], _unpack_2bit(b[:, 16:80], nb).astype(np.float32).reshape(nb, 16, 16)
        d, dmin = _h(b[:, 80:82])[:, None], _h(b[:, 82:84])[:, None]
        y = (d * (sc & 0xF))[..., None] * q - (dmin * (sc >> 4))[..., None]
        return y.reshape(-1)
    if dtype == "q3_k":
        hmask, s, d = b[:, 0:32], b[:, 96:108], _h(b[:, 108:110])[:, None]
        low = np.concatenate([s[:, 0:8] & 0xF, s[:, 0:8] >> 4], 1)
        j = np.arange(16)
        high = (s[:, 8 + j % 4] >> (2 * (j // 4)).astype(np.uint8)) & 3
        sc = (low | (high << 4)).astype(np.float32) - 32
        q = _unpack_2bit(b[:, 32:96], nb).astype(np.float32).reshape(nb, 2, 4, 32)
        bit = (hmask[:, None, None, :] >> np.arange(8, dtype=np.uint8).reshape(1, 2, 4, 1)) & 1
        q = (q - 4 * (1 - bit)).reshape(nb, 16, 16)
        return ((d * sc)[..., None] * q).reshape(-1)
    if dtype in ("q4_k", "q5_k"):
        d, dmin = _h(b[:, 0:2])[:, None], _h(b[:, 2:4])[:, None]
        sc, m = _k4_unpack(b[:, 4:16])
        qs = b[:, 16:144] if dtype == "q4_k" else b[:, 48:176]
        q = np.stack([qs.reshape(nb, 4, 32) & 0xF, qs.reshape(nb, 4, 32) >> 4], 2).reshape(nb, 8, 32)
        if dtype == "q5_k":
            q = q | (((b[:, None, 16:48] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1) << 4)
        y = (d * sc)[..., None] * q.astype(np.float32) - (dmin * m)[..., None]
        return y.reshape(-1)
    if dtype == "q6_k":
        ql, qh = b[:, 0:128].reshape(nb, 2, 64), b[:, 128:192].reshape(nb, 2, 32)
        sc, d = b[:, 192:208].view(np.int8).astype(np.float32), _h(b[:, 208:210])[:, None]
        lo = np.stack([ql[:, :, :32] & 0xF, ql[:, :, 32:] & 0xF, ql[:, :, :32] >> 4, ql[:, :, 32:] >> 4], 2)
        hi = np.stack([(qh >> s) & 3 for s in (0, 2, 4, 6)], 2)
        q = ((lo | (hi << 4)).astype(np.float32) - 32).reshape(nb, 16, 16)
        return ((d * sc)[..., None] * q).reshape(-1)
    raise ValueError(f"unknown quantized type {dtype!r}")


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
        self.tensors.append((name, block_info(dtype)[0], a.shape, encode(a, dtype)))

    def tensor_lazy(self, name, shape, dtype, make_chunks):
        """make_chunks() yields float arrays (or bytes already in `dtype`) whose concatenation
        (row-major) is the tensor. Quantized types (QUANT) take bytes only, or float arrays of
        whole blocks, which are quantized here."""
        t = block_info(dtype)[0]
        nbytes = type_bytes(dtype, int(np.prod(shape)))
        enc = lambda c: c if isinstance(c, (bytes, memoryview)) else encode(c, dtype)  # noqa: E731
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
_QUANT_ID = {v[0]: k for k, v in QUANT.items()}


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


def read_gguf(path, types=None):
    """Returns (metadata dict key → (type, value), tensors dict name → float32 array); quantized
    tensors (QUANT types) are dequantized. A dict passed as `types` receives name → type name."""
    buf = memoryview(np.fromfile(path, dtype=np.uint8))
    meta, infos = _gguf_layout(buf, path)
    tensors = {}
    names = {GGML_F32: "f32", GGML_F16: "f16", GGML_BF16: "bf16", **_QUANT_ID}
    for name, shape, t, start in infos:
        if types is not None:
            types[name] = names.get(t, str(t))
        n = int(np.prod(shape))
        if t == GGML_BF16:
            bits = np.frombuffer(buf, np.uint16, n, start)
            tensors[name] = from_bf16(bits).reshape(shape)
        elif t in _QUANT_ID:
            q = _QUANT_ID[t]
            tensors[name] = dequantize(buf[start: start + type_bytes(q, n)], q).reshape(shape)
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
