"""A test guest (guests/python/test): decodes every chunk with the SDK and prints each record
as tagged JSON (describe.py), so the test compares the component's decoder with the same code
on the machine's Python."""

import os

from out_wasm_guest import Output, export

from describe import line


class Decoder(Output):
    def flush(self, chunk):
        # Every record's line, in one write; a DecodeError answers FLB_ERROR with its offset.
        out = "".join(line(event) for event in chunk.events()).encode()
        view = memoryview(out)
        while view:
            view = view[os.write(1, view) :]


Output = export(Decoder)
