"""`textclf drift`: logged gateway traffic (the payload log) against the training data it was trained on.
TensorFlow-free, like the rest of serving/."""
