#!/usr/bin/env python3
"""Converts a PyTorch state dict in the LEGACY (pre-1.6, non-zip) serialization format to safetensors.

    convert_pth.py IN.pth OUT.safetensors

Needs only the standard library and numpy; torch is never imported. The legacy file is a sequence of pickles --
magic number, protocol version, sys info, the state dict, the list of storage keys -- followed by each storage's
raw bytes (an int64 element count, then the little-endian elements). The state dict pickle is read by an unpickler
that resolves only an explicit allow-list of globals, so the file cannot make this script run anything else.

Float tensors are written as F32 and integer ones (e.g. BatchNorm's `num_batches_tracked`) as I64, in a safetensors
file whose header lists tensors sorted by name. The output appears atomically (temporary file, fsync, rename).
"""
import collections
import json
import os
import pickle
import struct
import sys
import tarfile
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


class ConversionError(Exception):
    pass


class StorageType:
    """Stands in for a `torch.<Name>Storage` class: the unpickled state dict only names it."""

    def __init__(self, name, dtype, out_dtype):
        self.name, self.dtype, self.out_dtype = name, np.dtype(dtype), out_dtype

    def __repr__(self):
        return f"torch.{self.name}"


# BFloat16 has no numpy dtype: its bits are read as uint16 and widened to float32 in `materialise`.
STORAGE_TYPES = {
    t.name: t
    for t in [
        StorageType("FloatStorage", "<f4", "F32"),
        StorageType("DoubleStorage", "<f8", "F32"),
        StorageType("HalfStorage", "<f2", "F32"),
        StorageType("BFloat16Storage", "<u2", "F32"),
        StorageType("LongStorage", "<i8", "I64"),
        StorageType("IntStorage", "<i4", "I64"),
        StorageType("ShortStorage", "<i2", "I64"),
        StorageType("CharStorage", "i1", "I64"),
        StorageType("ByteStorage", "u1", "I64"),
        StorageType("BoolStorage", "?", "BOOL"),
    ]
}

BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")
OUT_DTYPES = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8"), "BOOL": np.dtype("?")}


class Storage:
    """A storage named by a persistent id; its bytes follow the pickles and are filled in later."""

    def __init__(self, key, type_, numel):
        self.key, self.type, self.numel, self.data = key, type_, numel, None


class StorageView:
    """A window [offset, offset + numel) of a root storage, as legacy files record shared storages."""

    def __init__(self, root, offset, numel):
        self.root, self.offset, self.numel = root, offset, numel


class TensorRef:
    """A tensor as `_rebuild_tensor_v2` describes it; turned into an array once the storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, StorageView):
        raise ConversionError(f"_rebuild_tensor_v2 got {type(storage).__name__}, not a storage")
    if len(size) != len(stride):
        raise ConversionError(f"tensor size {tuple(size)} and stride {tuple(stride)} differ in rank")
    return TensorRef(storage, storage_offset, size, stride)


def rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, TensorRef):
        raise ConversionError(f"_rebuild_parameter got {type(data).__name__}, not a tensor")
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    **{("torch", name): t for name, t in STORAGE_TYPES.items()},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS; storages arrive as persistent ids and are recorded in `self.storages`."""

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}  # key -> Storage, in first-seen order
        self.views = {}

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ConversionError(f"refusing to unpickle global {module}.{name}: not on the allow-list "
                                  f"of a plain tensor state dict") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] in ("storage", b"storage") and len(pid) in (5, 6)):
            raise ConversionError(f"unsupported persistent id {pid!r:.80}")
        type_, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(type_, StorageType):
            raise ConversionError(f"storage {key!r} has type {type_!r}, not a torch storage class")
        if not isinstance(numel, int) or numel < 0:
            raise ConversionError(f"storage {key!r} has element count {numel!r}")
        root = self.storages.setdefault(key, Storage(key, type_, numel))
        if root.type is not type_ or root.numel != numel:
            raise ConversionError(f"storage {key!r} is described twice with different type or size")
        if view is None:
            return StorageView(root, 0, numel)
        view_key, offset, view_numel = view
        if offset < 0 or view_numel < 0 or offset + view_numel > numel:
            raise ConversionError(f"storage view {view_key!r} [{offset}, +{view_numel}) exceeds storage {key!r} "
                                  f"of {numel} elements")
        return self.views.setdefault(view_key, StorageView(root, offset, view_numel))


class PlainUnpickler(RestrictedUnpickler):
    """For the header pickles, which hold only numbers, strings and dicts."""

    def find_class(self, module, name):
        raise ConversionError(f"refusing to unpickle global {module}.{name} in the file header")

    def persistent_load(self, pid):
        raise ConversionError("unexpected persistent id in the file header")


def read_legacy(f):
    """Returns the state dict as {name: TensorRef} with every storage's bytes loaded."""
    magic = PlainUnpickler(f).load()
    if magic != LEGACY_MAGIC:
        raise ConversionError("not a legacy PyTorch file (wrong magic number)")
    protocol = PlainUnpickler(f).load()
    if protocol != LEGACY_PROTOCOL:
        raise ConversionError(f"unsupported legacy protocol version {protocol!r} (expected {LEGACY_PROTOCOL})")
    sys_info = PlainUnpickler(f).load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise ConversionError("written on a big-endian machine or without sys info; not supported")

    unpickler = RestrictedUnpickler(f)
    state = unpickler.load()
    if not isinstance(state, dict):
        raise ConversionError(f"top-level object is a {type(state).__name__}, not a state dict")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, TensorRef):
            raise ConversionError(f"entry {name!r} is a {type(value).__name__}, not a tensor")

    keys = PlainUnpickler(f).load()
    if not isinstance(keys, list) or sorted(keys) != sorted(unpickler.storages):
        raise ConversionError("the storage key list does not match the storages the state dict uses")
    for key in keys:
        storage = unpickler.storages[key]
        header = f.read(8)
        if len(header) != 8:
            raise ConversionError(f"file ends before storage {key!r}")
        (numel,) = struct.unpack("<q", header)
        if numel != storage.numel:
            raise ConversionError(f"storage {key!r} holds {numel} elements, the state dict says {storage.numel}")
        nbytes = numel * storage.type.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise ConversionError(f"file ends inside storage {key!r} ({len(raw)} of {nbytes} bytes)")
        storage.data = np.frombuffer(raw, dtype=storage.type.dtype)
    return state


def materialise(name, t):
    """The tensor's elements as a contiguous array of its output dtype, honouring offset and strides."""
    view = t.storage
    if any(s < 0 for s in t.size) or any(s < 0 for s in t.stride) or t.offset < 0:
        raise ConversionError(f"{name}: negative size, stride or offset")
    if all(t.size):
        last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
        if last >= view.numel:
            raise ConversionError(f"{name}: size {t.size} stride {t.stride} offset {t.offset} reaches element "
                                  f"{last} of a storage of {view.numel}")
    data = view.root.data[view.offset:view.offset + view.numel]
    itemsize = data.dtype.itemsize
    base = data[t.offset:] if all(t.size) else data[:0]
    strided = np.lib.stride_tricks.as_strided(base, shape=t.size, strides=[s * itemsize for s in t.stride],
                                              writeable=False)
    out_dtype = view.root.type.out_dtype
    if view.root.type.name == "BFloat16Storage":
        return (strided.astype(np.uint32) << 16).view(np.float32).copy()
    # np.array, not np.ascontiguousarray: the latter turns 0-d tensors (num_batches_tracked) into shape [1].
    return np.array(strided, dtype=OUT_DTYPES[out_dtype], order="C", copy=True)


def write_safetensors(path, tensors):
    """Writes {name: array} with the header sorted by name and padded so the data starts 8-byte aligned."""
    dtype_names = {np.dtype("<f4"): "F32", np.dtype("<i8"): "I64", np.dtype("?"): "BOOL"}
    header, offset = {}, 0
    for name in sorted(tensors):
        a = tensors[name]
        header[name] = {"dtype": dtype_names[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)

    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for name in sorted(tensors):
                f.write(tensors[name].tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def convert(src, dst):
    if zipfile.is_zipfile(src):
        raise ConversionError("is a zip archive (the PyTorch >= 1.6 format), not the legacy format this reads")
    if tarfile.is_tarfile(src):
        raise ConversionError("is a tar archive (the PyTorch < 0.4 format), not the legacy format this reads")
    with open(src, "rb") as f:
        state = read_legacy(f)
    tensors = {name: materialise(name, t) for name, t in state.items()}
    write_safetensors(dst, tensors)
    return tensors


def main(argv):
    if len(argv) != 3:
        print(f"usage: {os.path.basename(argv[0])} IN.pth OUT.safetensors", file=sys.stderr)
        return 2
    src, dst = argv[1], argv[2]
    try:
        tensors = convert(src, dst)
    except ConversionError as e:
        print(f"convert_pth: error: {src}: {e}", file=sys.stderr)
        return 1
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, struct.error) as e:
        print(f"convert_pth: error: {src}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    # BatchNorm running statistics are state, not parameters; counted apart to match the usual parameter count.
    buffers = sum(a.size for n, a in tensors.items() if n.endswith(BUFFER_SUFFIXES))
    params = sum(a.size for a in tensors.values()) - buffers
    print(f"{dst}: {len(tensors)} tensors, {params:,} parameters (+ {buffers:,} buffer values), from {src}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
