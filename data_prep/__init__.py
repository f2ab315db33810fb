"""Raw labelled text -> cleaned, de-duplicated, split, jieba-segmented dataset (Contract 1).

Its cleaning and segmentation are THE preprocessing: training and the serving gateway call the same
functions. Importing this package must stay cheap and TensorFlow-free (the gateway imports it).
"""
