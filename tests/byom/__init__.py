"""Binarized PyTorch models written the way their public code writes them ("bring your own
model"), for the generic importer's acceptance tests.

    module              factory (defaults)                                   checkpoint layout
    xnor_resnet         resnet20_xnor(num_classes=10), resnet20_bwn(..)      {'best_acc', 'state_dict'}
                        + BinOp(model), prepare(model) before eval
    birealnet           birealnet18(num_classes=1000, base_width=64)         DataParallel {'epoch', 'state_dict',
                                                                             'best_top1_acc', 'optimizer'}
    irnet               resnet20_1w1a(num_classes=10)                        DataParallel {'state_dict', 'best_prec1'}
    reactnet_official   reactnet(num_classes=1000, stage_out_channel=..,     as birealnet
                        stem_stride=2); small_stage_out_channel
    binarynet_mlp       binarynet_mlp(num_classes=10, width=2048,            {'epoch', 'model', 'config',
                        infl_ratio=3)                                        'state_dict', 'best_prec1', 'regime'}
    odd_model           odd_net(num_classes=10, width=16)                    a bare state_dict

Each module also has ``randomize(model, seed, ..., calibrate=True)`` (realistic parameters, BN
running statistics measured on random inputs) and ``save_checkpoint(model, path, ...)``. Each
model file imports only torch at module level (its randomizer and writer import ``byom._common``
or ``helpers.torch_reference`` when called, with ``tests/`` on sys.path), so it also loads by file path
like a user's own model file; that is why each keeps its own copy of its authors' small pieces
(sign Functions, LambdaLayer) rather than sharing them."""
