"""Datasets held as uint8 tensors on the training device, augmented there in batch.

    images     ImageData (train/test tensors, normalization, batches, subsets), crop and flip
    sources    the torchvision datasets and image folders, and what is wrong when they cannot load
    synthetic  learnable stand-ins of each dataset's shapes and classes (tests, smoke runs)
    load       load_data: the dataset a DataSection names, with its seeded subsets

Imports lthkit.config (the catalog of shapes and sizes, paths, seeds) and lthkit.platform;
the networks, training and the analyses import it.
"""

from lthkit.config.catalog import iterations_per_epoch, known_train_size
from lthkit.config.seeds import derive_seed
from lthkit.data.images import DatasetMissingError, ImageData, crop_and_flip
from lthkit.data.load import load_data
from lthkit.data.synthetic import synthetic_images

__all__ = ["ImageData", "load_data", "DatasetMissingError", "derive_seed", "synthetic_images",
           "known_train_size", "iterations_per_epoch", "crop_and_flip"]
