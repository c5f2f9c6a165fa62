"""Networks and the points of their weight space: the papers' architectures, masks and how they are
made, and the loss of many weight vectors at once (the primitive of every analysis).

    models     ResNet-20, VGG-16 (BatchNorm) for CIFAR, MLP 300-100-10, LeNet-5; what is prunable
    pruning    masks: magnitude and random pruning, global or per layer, applied and counted
    points     ParamLayout (W as one flat vector), P copies of a network as one grouped network
    batchnorm  BatchNorm under control: the recalibrated statistics of a point that was not trained
    evaluator  PointEvaluator: loss and accuracy of a block of points on the analysis subset
    probe      points_per_pass "auto": from memory and a short speed probe

Imports lthkit.config and lthkit.platform; training, analyses and tickets import it.
"""

from lthkit.nets.evaluator import PointEvaluator
from lthkit.nets.points import (ParamLayout, bn_modules, fused_by_default, grouped_call,
                                has_batchnorm, map_points, stack_states)

__all__ = ["PointEvaluator", "ParamLayout", "bn_modules", "fused_by_default", "grouped_call",
           "has_batchnorm", "map_points", "stack_states"]
