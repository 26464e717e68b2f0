"""``catdog-zoo audit``: what is wrong with a dataset before anyone trains on it or trusts its scores.

Likely label errors (out-of-fold predictions that disagree with the folder), near-duplicates (grouped, loud
when a group spans splits), off-topic photos (unlike every class) and splits too small to trust, all from
the default pretrained backbone's cached features. The dataset is only read.
"""
