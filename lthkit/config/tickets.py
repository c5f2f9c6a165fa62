"""The sections of the lottery-ticket experiments beyond the main paper: the MNIST tickets, their
transfer and early-bird tickets (the IE643 report: mnist), and Bain's LeNet-5 study (bain)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lthkit.config.base import LevelSelection, _check_level_list, _KeyError, _Section
from lthkit.config.catalog import input_shape
from lthkit.config.training import (DataSection, ImpSection, ModelSection, TrainSection,
                                    _check_levels_fit_for)


class RunSpec(_Section):
    """A training run of its own inside a section (another model, optimizer or IMP recipe)."""

    model: ModelSection = ModelSection()
    train: TrainSection = TrainSection()
    imp: ImpSection = ImpSection()


_ADAM_MNIST = {"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60, "momentum": 0.0,
               "weight_decay": 0.0, "milestones": [], "precision": "fp32"}


class EarlyBirdSection(_Section):
    """Early-bird tickets (You et al. 2020): when a run's mask stops moving, during training."""

    channel_ratio: float = Field(0.5, gt=0, lt=1, description="You et al.'s channel pruning ratio "
                                 "p: the fraction of BatchNorm channels, ranked globally by "
                                 "|gamma|, that each epoch's channel mask prunes (they use 0.3, "
                                 "0.5, 0.7)")
    prune_fraction: float = Field(0.5, gt=0, lt=1, description="sparsity of the weight masks "
                                  "(global magnitude pruning) compared epoch to epoch beside the "
                                  "channel masks")
    window: int = Field(5, ge=1, description="the ticket is drawn when the distances of the last "
                        "`window` pairs of consecutive epochs are all under epsilon (You et al.: "
                        "a FIFO queue of 5)")
    epsilon: float = Field(0.1, gt=0, lt=1, description="largest normalized Hamming distance "
                           "between consecutive masks that counts as settled (You et al.: 0.1)")


class TransferSection(_Section):
    arch: Literal["mlp", "lenet5"] = Field("mlp", description="network of the transfer tasks")
    train: TrainSection = Field(TrainSection(**{**_ADAM_MNIST, "batch_size": 50, "epochs": 50}),
                                description="Adam recipe of the report's Table 2")
    sgd_lr: float = Field(1.2e-3, gt=0, description="lr of the SGD runs of task 3: the report's "
                          "0.0012 (Table 2 gives one lr for both optimizers); 0.05 with "
                          "sgd_momentum 0.9 is the tuned alternative, for an SGD ticket trained "
                          "as well as the Adam one")
    sgd_momentum: float = Field(0.0, ge=0, lt=1, description="momentum of the SGD runs of task 3: "
                                "the report names none, so 0 (torch.optim.SGD's default); 0.9 "
                                "with sgd_lr 0.05 is the tuned alternative")
    halves_imp: ImpSection = Field(ImpSection(levels=5, prune_fraction=0.5, rewind_iteration=0,
                                              save_every=0), description="task 1: halves of the data")
    labels_imp: ImpSection = Field(ImpSection(levels=15, prune_fraction=0.35, rewind_iteration=0,
                                              save_every=0), description="task 2: digits 0-4 -> 5-9")
    optimizers_imp: ImpSection = Field(ImpSection(levels=10, prune_fraction=0.5, rewind_iteration=0,
                                                  save_every=0), description="task 3: SGD <-> Adam")


class MnistSection(_Section):
    """Notebook 10 (the IE643 report): MNIST tickets, their transfer, early-bird tickets."""

    data: DataSection = DataSection(dataset="mnist", augment=False)
    mlp: RunSpec = RunSpec(model=ModelSection(arch="mlp"),
                           train=TrainSection(**{**_ADAM_MNIST, "epochs": 75}),
                           imp=ImpSection(levels=20, prune_fraction=0.3, rewind_iteration=0,
                                          trajectory_levels=[0]))
    lenet5: RunSpec = RunSpec(model=ModelSection(arch="lenet5"),
                              train=TrainSection(**{**_ADAM_MNIST, "epochs": 50}),
                              imp=ImpSection(levels=20, prune_fraction=0.2, rewind_iteration=0,
                                             save_every=0))
    transfer: TransferSection = TransferSection()
    early_bird: EarlyBirdSection = EarlyBirdSection()

    @model_validator(mode="after")
    def _fits(self) -> "MnistSection":
        for name in ("mlp", "lenet5"):
            spec = getattr(self, name)
            _check_levels_fit_for(spec.model, self.data.name, spec.imp, f"{name}.imp")
        t = self.transfer
        for name in ("halves_imp", "labels_imp", "optimizers_imp"):
            _check_levels_fit_for(ModelSection(arch=t.arch), self.data.name, getattr(t, name),
                                  f"transfer.{name}")
        return self


class EarlyStoppingSection(_Section):
    """Bain keeps "the best models ... using early stopping": each round's kept model is the
    epoch with the lowest loss on a validation split carved from the training set."""

    enabled: bool = Field(True, description="keep each round's best epoch by validation loss "
                          "(Bain); false: keep the last epoch")
    validation_size: int = Field(5000, ge=1, description="examples carved (seeded) from the "
                                 "training set as the validation split; they are never trained on")
    patience: int | None = Field(None, ge=1, description="stop a round after this many epochs "
                                 "without a lower validation loss; None: train the whole round "
                                 "and keep its best epoch (Bain prunes 'after every 35 epochs' "
                                 "and gives no patience)")


class BainSection(_Section):
    """Notebook 11 (Bain): LeNet-5 tickets on CIFAR-10 against random tickets, their landscapes."""

    data: DataSection = DataSection(dataset="cifar10", augment=False)
    model: ModelSection = ModelSection(arch="lenet5")
    train: TrainSection = Field(
        TrainSection(optimizer="adam", lr=2e-3, batch_size=9600, momentum=0.0, weight_decay=0.0,
                     epochs=35, milestones=[], precision="fp32", eval_batch_size=2000),
        description="Adam with very large batches, 35 epochs per round (Bain); lr not given there")
    imp: ImpSection = ImpSection(levels=35, prune_fraction=0.1, scope="layerwise",
                                 rewind_iteration=0, save_every=0)
    show_levels: LevelSelection = Field([0, 7, 14, 21, 28, 35], description="levels whose IMP and "
                                        "random tickets get a surface")
    random_levels: LevelSelection = Field("all", description="levels with a random ticket (the "
                                          "accuracy-gap plot uses all of them)")
    subsample_sizes: list[int] = Field([10, 50, 250, 1000], description="examples per surface in "
                                       "the plot of how the surface settles")
    surface_split: Literal["test", "train"] = Field(
        "test", description="examples the surfaces are evaluated on: a seeded sample of the test "
        "set (Bain: 250 test images) or of the analysis subset of the training set")
    directions: Literal["dense", "masked"] = Field(
        "dense", description="surface directions: dense = on every weight of two or more "
        "dimensions, pruned or not, so a ticket moves off its subnetwork (Bain's code: "
        "--dir_type weights --xnorm filter --xignore biasbn); masked = zero on the ticket's "
        "pruned weights (the kit's extension)")
    draw: Literal["shared", "per_level"] = Field(
        "shared", description="raw random directions: shared = one draw for every level and "
        "both tickets (Bain: one seed for every model); per_level = a draw of its own per level "
        "(shared by a level's two tickets)")
    early_stopping: EarlyStoppingSection = EarlyStoppingSection()

    @model_validator(mode="after")
    def _fits(self) -> "BainSection":
        _check_levels_fit_for(self.model, self.data.name, self.imp, "imp")
        for key in ("show_levels", "random_levels"):
            _check_level_list(getattr(self, key), self.imp.levels, key, minimum=0)
        if input_shape(self.data.name)[0] == 1 or self.model.arch not in ("lenet5", "mlp"):
            raise _KeyError("model.arch", "Bain's experiment is LeNet-5 (or an MLP) on CIFAR-10")
        es = self.early_stopping
        if es.enabled and self.data.train_size is not None and \
                es.validation_size >= self.data.train_size:
            raise _KeyError("early_stopping.validation_size", f"{es.validation_size} leaves no "
                            f"training example of data.train_size {self.data.train_size}")
        return self


