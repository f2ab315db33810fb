"""The HTTP gateway in front of TF Serving: clean + segment texts (data_prep), call TF Serving over REST
or gRPC, answer labels and scores. Never imports TensorFlow, Keras or tfmodels (small image, fast start);
see tfs_protos for how TF Serving's protos are loaded without TensorFlow."""
