"""Lottery tickets beyond the main paper: MNIST tickets and their transfer, early-bird tickets
(the IE643 report, after Frankle & Carbin 2019, Morcos et al. 2019, You et al. 2020), and
winning against random tickets of LeNet-5 on CIFAR-10 (Bain).

    common      a ticket against its control, level by level; the epoch early stopping kept
    mnist       the MNIST tickets (IE643 Table 1)
    transfer    tickets moved between halves, label sets and optimizers (IE643 tasks 1-3)
    early_bird  early-bird tickets from weight or channel masks (You et al.)
    bain        Bain's LeNet-5 tickets against random tickets, with early stopping

Every experiment is an IMP run of its own (`lthkit.train.context.sub_run`) inside the run folder:

    <run>/mnist/mlp, <run>/mnist/lenet5            tickets with rewinding to initialization
    <run>/mnist/transfer/<config>                   tickets of each transfer configuration
    <run>/mnist/transfer/<target>/from_<source>/    a source ticket retrained on the target
    <run>/bain                                      LeNet-5 tickets and random tickets

so each is resumable, and reused on the next run, like the main IMP run. Early-bird tickets need
per-epoch weights: the MNIST MLP's dense run (weight masks) and the main run's dense level 0
(a BatchNorm network: You et al.'s channel masks).

Tables keep both sides of each published statement in columns of one row per level (the
ticket and its control, the transferred ticket and the target's own, the IMP and the random
ticket's surface), so a claim can be read off level by level.

Imports the training (lthkit.train), the data and the landscape (lthkit.analysis); notebooks 10
and 11 and lthkit.plots.tickets use it.
"""

from lthkit.tickets.bain import (RANDOM_TICKET, EarlyStopper, accuracy_table, bain_landscape,
                                 bain_pairs, bain_protocol, bain_tickets, kept_iterations,
                                 shown_levels, split_validation, surface_stats, surface_table,
                                 sweep_level,
                                 sweep_sizes, ticket_histories, ticket_surfaces,
                                 train_early_stopped)
from lthkit.tickets.common import EARLY_STOPPING_FILE, kept_epoch, tickets_table
from lthkit.tickets.early_bird import (bn_scale_names, channel_distance_matrix, channel_early_bird,
                                       channel_masks, drawn_epoch, early_bird_rule,
                                       early_bird_summary, early_birds, main_run_trajectory,
                                       mask_distances, settled_epoch, weight_early_bird,
                                       weight_masks)
from lthkit.tickets.mnist import iteration_histories, iteration_levels, mnist_tickets
from lthkit.tickets.transfer import (TransferConfig, TransferResult, TransferTask, run_transfer,
                                     transfer_summary, transfer_table, transfer_tasks)

__all__ = ["EARLY_STOPPING_FILE", "kept_epoch", "tickets_table", "iteration_histories",
           "iteration_levels", "mnist_tickets", "TransferConfig", "TransferResult",
           "TransferTask", "run_transfer", "transfer_summary", "transfer_table",
           "transfer_tasks", "bn_scale_names", "channel_distance_matrix",
           "channel_early_bird", "channel_masks", "drawn_epoch", "early_bird_rule",
           "early_bird_summary", "early_birds", "main_run_trajectory", "mask_distances",
           "settled_epoch", "weight_early_bird", "weight_masks", "RANDOM_TICKET",
           "EarlyStopper", "accuracy_table", "bain_landscape", "bain_pairs", "bain_protocol",
           "bain_tickets", "kept_iterations", "shown_levels", "split_validation",
           "surface_stats", "surface_table", "sweep_level", "sweep_sizes",
           "ticket_histories", "ticket_surfaces", "train_early_stopped"]
