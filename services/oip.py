"""The KServe Open Inference Protocol v2 (`inference.GRPCInferenceService`) for our models.

Served by `ServingRecommender`, as the other protocols are.

Standard clients (`tritonclient.grpc`, KServe's) see one model, `recommender`:

| tensor | datatype | shape | |
|---|---|---|---|
| input `user_id` | INT64 (or INT32) | [B] or [B, 1] | required, at most 256 users |
| input `k` | INT64 (or INT32) | [1] | optional, default 10 |
| input `exclude_seen` | BOOL | [1] | optional, default true |
| input `category` | BYTES | [1] | optional |
| output `item_id` | INT64 | [B, k] | best first; -1 pads rows with fewer than k items |
| output `score` | FP32 | [B, k] | -inf where `item_id` is -1 |
| output `fallback` | BOOL | [B] | true: not personalised (see docs/serving.md) |

Each user is answered exactly as `augrec.v1.Recommender/Recommend` and `POST /recommend`
would answer them. The messages are `tritonclient`'s bundled stubs: a second copy of the
`inference` proto package in one process fails with "duplicate symbol".
"""

from __future__ import annotations

import re
import struct
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from augrec.serving import schemas as s
from augrec.serving.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from augrec.services.metrics import Metrics

    from augrec.serving.recommender import ServingRecommender

SERVICE = "inference.GRPCInferenceService"
MODEL_NAME = "recommender"
MAX_USERS = 256
_INT_TYPES = {"INT64": np.int64, "INT32": np.int32}
_CONTENTS = {"INT64": "int64_contents", "INT32": "int_contents", "BOOL": "bool_contents"}
_INPUTS = {
    "user_id": ("INT64", [-1]),
    "k": ("INT64", [1]),
    "exclude_seen": ("BOOL", [1]),
    "category": ("BYTES", [1]),
}
_OUTPUTS = {
    "item_id": ("INT64", [-1, -1]),
    "score": ("FP32", [-1, -1]),
    "fallback": ("BOOL", [-1]),
}


def _decode(tensor: Any, raw: bytes | None) -> np.ndarray | list[bytes]:
    """One input tensor as an array (BYTES: a list of bytes), checked against its shape."""
    name, dtype = tensor.name, tensor.datatype
    count = int(np.prod(tensor.shape)) if len(tensor.shape) else 1
    if any(d < 0 for d in tensor.shape):
        raise InvalidRequest(name, f"shape {list(tensor.shape)} has a negative dimension")
    if dtype == "BYTES":
        values = list(tensor.contents.bytes_contents) if raw is None else _split_bytes(name, raw)
        out: np.ndarray | list[bytes] = values
        n = len(values)
    elif dtype in _INT_TYPES or dtype == "BOOL":
        np_type = _INT_TYPES.get(dtype, np.bool_)
        if raw is None:
            arr = np.asarray(getattr(tensor.contents, _CONTENTS[dtype]), dtype=np_type)
        else:
            if len(raw) % np.dtype(np_type).itemsize:
                raise InvalidRequest(name, f"{len(raw)} raw bytes is not a whole {dtype} count")
            arr = np.frombuffer(raw, dtype=np_type)
        out, n = arr, arr.size
    else:
        raise InvalidRequest(name, f"datatype {dtype} is not supported here")
    if n != count:
        raise InvalidRequest(name, f"shape {list(tensor.shape)} holds {count} values, got {n}")
    return out


def _split_bytes(name: str, raw: bytes) -> list[bytes]:
    """BYTES raw contents: each element is a 4-byte little-endian length, then the bytes."""
    out, pos = [], 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise InvalidRequest(name, "truncated BYTES element length")
        (length,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + length > len(raw):
            raise InvalidRequest(name, "truncated BYTES element")
        out.append(raw[pos : pos + length])
        pos += length
    return out


def _scalar(name: str, value: Any) -> Any:
    if len(value) != 1:
        raise InvalidRequest(name, f"expected one value, got {len(value)}")
    return value[0]


def parse_infer(request: Any) -> tuple[list[int], dict[str, Any]]:
    """User ids and the shared request fields of a ModelInferRequest."""
    raws = list(request.raw_input_contents)
    if raws and len(raws) != len(request.inputs):
        raise InvalidRequest(
            "raw_input_contents", f"{len(raws)} raw contents for {len(request.inputs)} inputs"
        )
    tensors = {}
    for i, tensor in enumerate(request.inputs):
        if tensor.name not in _INPUTS:
            raise InvalidRequest(tensor.name, f"unknown input; expected {sorted(_INPUTS)}")
        if tensor.name in tensors:
            raise InvalidRequest(tensor.name, "given twice")
        tensors[tensor.name] = _decode(tensor, raws[i] if raws else None)
    if "user_id" not in tensors:
        raise InvalidRequest("user_id", "input is required")
    users = np.asarray(tensors["user_id"]).ravel()
    if not 1 <= users.size <= MAX_USERS:
        raise InvalidRequest("user_id", f"expected 1 to {MAX_USERS} users, got {users.size}")
    fields: dict[str, Any] = {}
    if "k" in tensors:
        fields["k"] = int(_scalar("k", tensors["k"]))
    if "exclude_seen" in tensors:
        fields["exclude_seen"] = bool(_scalar("exclude_seen", tensors["exclude_seen"]))
    if "category" in tensors:
        raw_cat = _scalar("category", tensors["category"])
        try:
            fields["category"] = bytes(raw_cat).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest("category", "not UTF-8") from exc
    return [int(u) for u in users], fields


def handlers(
    rec: ServingRecommender, metrics: Metrics, max_bytes: int | None = None
) -> grpc.GenericRpcHandler:
    """The five calls of the protocol standard clients need (others: UNIMPLEMENTED).

    Requests over `max_bytes` are refused with RESOURCE_EXHAUSTED before they are parsed.
    """
    from augrec.services.grpc_server import unary
    from tritonclient.grpc import service_pb2 as pb

    def check_model(name: str, version: str) -> None:
        if name != MODEL_NAME or version not in ("", rec.version):
            raise NotFound(
                "model_name",
                f"no model {name!r} version {version!r}; serving {MODEL_NAME!r} "
                f"version {rec.version!r}",
            )

    def server_live(_req: Any, _ctx: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    def server_ready(_req: Any, _ctx: Any) -> Any:
        return pb.ServerReadyResponse(ready=rec.health().ready)

    def server_metadata(_req: Any, _ctx: Any) -> Any:
        from importlib.metadata import version

        return pb.ServerMetadataResponse(name="augrec", version=version("augrec"))

    def model_ready(req: Any, _ctx: Any) -> Any:
        ok = req.name == MODEL_NAME and req.version in ("", rec.version)
        return pb.ModelReadyResponse(ready=ok and rec.health().ready)

    def model_metadata(req: Any, _ctx: Any) -> Any:
        check_model(req.name, req.version)
        tm = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=MODEL_NAME,
            versions=[rec.version],
            platform=f"augrec_{rec.model.name}",
            inputs=[tm(name=n, datatype=d, shape=sh) for n, (d, sh) in _INPUTS.items()],
            outputs=[tm(name=n, datatype=d, shape=sh) for n, (d, sh) in _OUTPUTS.items()],
        )

    def model_infer(req: Any, _ctx: Any) -> Any:
        check_model(req.model_name, req.model_version)
        users, fields = parse_infer(req)
        answers = [
            rec.recommend(s.RecommendRequest.model_validate({"user_id": u, **fields}))
            for u in users
        ]
        k = fields.get("k", s.RecommendRequest.model_fields["k"].default)
        items = np.full((len(users), k), -1, dtype=np.int64)
        scores = np.full((len(users), k), -np.inf, dtype=np.float32)
        for row, ans in enumerate(answers):
            items[row, : len(ans.items)] = [i.item_id for i in ans.items]
            scores[row, : len(ans.items)] = [i.score for i in ans.items]
        fallback = np.asarray([a.fallback for a in answers], dtype=np.bool_)
        arrays = {"item_id": items, "score": scores, "fallback": fallback}
        wanted = [o.name for o in req.outputs] or list(_OUTPUTS)
        for name in wanted:
            if name not in arrays:
                raise InvalidRequest("outputs", f"unknown output {name!r}; have {list(arrays)}")
        return pb.ModelInferResponse(
            model_name=MODEL_NAME,
            model_version=rec.version,
            id=req.id,
            outputs=[
                pb.ModelInferResponse.InferOutputTensor(
                    name=n, datatype=_OUTPUTS[n][0], shape=list(arrays[n].shape)
                )
                for n in wanted
            ],
            raw_output_contents=[arrays[n].tobytes() for n in wanted],
        )

    calls = {
        "ServerLive": (server_live, pb.ServerLiveRequest, pb.ServerLiveResponse),
        "ServerReady": (server_ready, pb.ServerReadyRequest, pb.ServerReadyResponse),
        "ServerMetadata": (server_metadata, pb.ServerMetadataRequest, pb.ServerMetadataResponse),
        "ModelReady": (model_ready, pb.ModelReadyRequest, pb.ModelReadyResponse),
        "ModelMetadata": (model_metadata, pb.ModelMetadataRequest, pb.ModelMetadataResponse),
        "ModelInfer": (model_infer, pb.ModelInferRequest, pb.ModelInferResponse),
    }
    methods = {
        name: unary(metrics, _label(name), fn, req_cls, resp_cls, max_bytes)
        for name, (fn, req_cls, resp_cls) in calls.items()
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


def _label(method: str) -> str:
    """`ModelInfer` -> `oip_model_infer`, the metrics' endpoint label."""
    return "oip" + re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), method)
