"""The config protos tensorflow_model_server reads, and its text-format file parsing.

`tensorflow-serving-api` ships ModelServerConfig but not BatchingParameters (session_bundle_config.proto)
nor MonitoringConfig, so those two are declared here from their published schemas (same full names, same
field numbers), which keeps text-format files written for TF Serving valid here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from google.protobuf.message import Message

from serving.model_server.errors import invalid_argument, not_found

_F = descriptor_pb2.FieldDescriptorProto


def _declare() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    f = descriptor_pb2.FileDescriptorProto(
        name="textclf/tf_serving_configs.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )

    def add(
        message: descriptor_pb2.DescriptorProto,
        name: str,
        number: int,
        ftype: int,
        type_name: str = "",
        repeated: bool = False,
    ) -> None:
        field = message.field.add(
            name=name, number=number, type=ftype, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
        )
        if type_name:
            field.type_name = type_name

    batching = f.message_type.add(name="BatchingParameters")
    for name, number in (
        ("max_batch_size", 1),
        ("batch_timeout_micros", 2),
        ("max_enqueued_batches", 3),
        ("num_batch_threads", 4),
        ("max_execution_batch_size", 9),
    ):
        add(batching, name, number, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value")
    add(batching, "thread_pool_name", 5, _F.TYPE_MESSAGE, ".google.protobuf.StringValue")
    add(batching, "enable_large_batch_splitting", 8, _F.TYPE_MESSAGE, ".google.protobuf.BoolValue")
    add(batching, "allowed_batch_sizes", 6, _F.TYPE_INT64, repeated=True)
    add(batching, "pad_variable_length_inputs", 7, _F.TYPE_BOOL)

    prometheus = f.message_type.add(name="PrometheusConfig")
    add(prometheus, "enable", 1, _F.TYPE_BOOL)
    add(prometheus, "path", 2, _F.TYPE_STRING)
    monitoring = f.message_type.add(name="MonitoringConfig")
    add(monitoring, "prometheus_config", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig")
    pool.Add(f)
    return pool


_POOL = _declare()
BatchingParameters = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
)
MonitoringConfig = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


def parse_text_file(path: str, message: Message) -> Message:
    """Fill `message` from a text-format file, failing like TF Serving's ParseProtoTextFile.

    The parser's own complaint goes to stderr as libprotobuf logs it; the raised ServingError is what
    tensorflow_model_server's start-up reports before exiting non-zero.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise not_found(f"{path}; {exc.strerror}") from None
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        where = f"{exc.GetLine()}:{exc.GetColumn()}: " if exc.GetLine() is not None else ""
        detail = str(exc).split(" : ", 1)[-1]
        print(
            f"[libprotobuf ERROR] Error parsing text-format {message.DESCRIPTOR.full_name}: {where}{detail}",
            file=sys.stderr,
            flush=True,
        )
        raise invalid_argument(f"Invalid protobuf file: '{path}'") from None
    return message
