"""A Python handle on one model Buffer::OwnedImpl, for testing the buffer semantics."""

from __future__ import annotations


class ModelBuffer:
    """Each method is the OwnedImpl member of the same name; integer helpers take the C++
    type name ("uint32_t", "int16_t", ...), the byte count and the order ("be", "le", "host").
    Failures raise BufferOpError(kind="EnvoyException" | "assertion" | "other")."""

    def __init__(self, backend, data: bytes = b""):
        self._call = backend.call
        self.handle = self._call("buf_new", bytes(data))

    def __bytes__(self) -> bytes:
        return self._call("buf_bytes", self.handle)

    def __len__(self) -> int:
        return self._call("buf_length", self.handle)

    def slices(self) -> int:
        return self._call("buf_slices", self.handle)

    def add(self, data: "bytes | ModelBuffer") -> None:
        if isinstance(data, ModelBuffer):
            self._call("buf_add_buffer", self.handle, data.handle)
        else:
            self._call("buf_add", self.handle, bytes(data))

    def prepend(self, data: "bytes | ModelBuffer") -> None:
        if isinstance(data, ModelBuffer):
            self._call("buf_prepend_buffer", self.handle, data.handle)
        else:
            self._call("buf_prepend", self.handle, bytes(data))

    def move(self, other: "ModelBuffer", length: int | None = None) -> None:
        self._call("buf_move", self.handle, other.handle, length)

    def drain(self, size: int) -> None:
        self._call("buf_drain", self.handle, size)

    def copy_out(self, start: int, size: int) -> bytes:
        return self._call("buf_copy_out", self.handle, start, size)

    def linearize(self, size: int) -> tuple[bytes, int]:
        return self._call("buf_linearize", self.handle, size)

    def search(self, needle: bytes, start: int, length: int | None = None) -> int:
        return self._call("buf_search", self.handle, bytes(needle), start, length)

    def starts_with(self, data: bytes) -> bool:
        return self._call("buf_starts_with", self.handle, bytes(data))

    def peek(self, ctype: str, size: int, order: str, start: int = 0) -> int:
        return self._call("buf_peek", self.handle, ctype, size, order, start)

    def drain_int(self, ctype: str, size: int, order: str) -> int:
        return self._call("buf_drain_int", self.handle, ctype, size, order)

    def write_int(self, ctype: str, size: int, order: str, value: int) -> None:
        self._call("buf_write_int", self.handle, ctype, size, order, value)

    def free(self) -> None:
        if self.handle:
            self._call("buf_free", self.handle)
            self.handle = None
