"""Binarized PyTorch models written the way their public code writes them ("bring your own
model"), for the generic importer's acceptance tests. Each module has a factory, a
``randomize(model, seed)`` and a checkpoint writer in that code's own layout; ``_common`` holds
what the randomizers share. Each model file imports only torch at module level (its randomizer
imports ``byom._common`` when called), so it also loads by file path like a user's own model file;
that is why each keeps its own copy of its authors' small sign Function."""
