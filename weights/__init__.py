"""Pretrained models shipped with xnorinfer (see the model cards, *.md, beside them)."""
