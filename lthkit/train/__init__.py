"""Training: the run's context, masked training (alone or K networks fused as one), iterative
magnitude pruning with weight rewinding, and the comparison solutions of the paper.

    context    Context: parameters, device, run folder, data and evaluator of one run (open_run)
    fused      K networks of one architecture trained as one grouped network
    training   masked SGD/Adam, resumable checkpoints, evaluation, CUDA graphs
    imp        IMP with weight rewinding: the levels W_min(L), their masks and trajectories
    baselines  one-shot, fine-tuned, lr-rewound, re-initialized and randomly pruned solutions
    open_lth   finished open_lth runs imported as run folders (lthkit-import-open-lth)
    open_lth_run  an open_lth folder's layout, steps and hparams.log as the kit's parameters

Imports lthkit.config, .platform, .store, .data and .nets; the analyses, the tickets and the
runner import it.
"""
