"""A local server that speaks TF Serving's REST and gRPC APIs: the one part of `serving/` that imports TensorFlow.

Modules by concern (as in kserve): `flags` (tensorflow_model_server's command line), `protos` (config protos
the pip package lacks), `repository` (versions on disk and their lifecycle), `servable` (one loaded version),
`warmup`, `batching`, `inference` (running requests on a held version), `dataplane` (servable handles and
predict/classify/... independent of protocol), `json_tensor` (TF Serving's
JSON <-> tensors), `rest` and `grpc_service` (the two wire protocols), `monitoring`, `server` (wiring), `cli`.
"""
