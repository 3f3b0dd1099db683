"""The names of TEAS's evaluated variants, shared by its stages, tables, figures and report: one
place, so a caption cannot call an allocation without retraining "TEAS"."""

FIXED = "fixed T"  # every layer at the full window T, layer-major
ALLOCATION = "TEAS allocation (no retraining)"  # the allocation on the trained weights as they are
RETRAINED = "TEAS retrained"  # regularized retraining with window adjustment, then fine-tuning
NOREG = "TEAS retrained, no regularizer"  # the ablation: the same with lambda 0
CONTROL = "fixed T, trained as long"  # the MNIST MLP at T trained for the retraining's extra epochs
