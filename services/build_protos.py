"""Generate the gRPC stubs ahead of time: `python -m augrec.services.build_protos [--out DIR]`.

Servers generate them on first use (see `augrec.services.stubs`); run this at image build
time when the running file system will be read-only, and set `AUGREC_PROTO_CACHE=DIR`.
"""

from __future__ import annotations

import argparse

from augrec.services import stubs


def main(argv: list[str] | None = None) -> None:
    """Generate into DIR (default: the first writable cache directory) and print where."""
    parser = argparse.ArgumentParser(prog="python -m augrec.services.build_protos")
    parser.add_argument("--out", help="cache directory (then set AUGREC_PROTO_CACHE to it)")
    args = parser.parse_args(argv)
    if args.out:
        print(stubs.generate(args.out))
    else:
        pb2, _ = stubs.load()
        print(pb2.__file__)


if __name__ == "__main__":
    main()
