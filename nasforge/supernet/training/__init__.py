"""Supernet training: the loop and its seams.

:mod:`.trainer` (the loop over ``train_step``), :mod:`.callbacks` (throughput, progress bar,
validation, TensorBoard, CSV log, checkpoint cadence), :mod:`.connector` (writing checkpoints and
the named restore steps of a resume), :mod:`.recipe` and :mod:`.recipe_flags` (recipes as files,
the flags that override them), :mod:`.optim` and :mod:`.sliced_optim`, :mod:`.losses`,
:mod:`.precision`, :mod:`.samplers`, :mod:`.distributed` and :mod:`.launch` (in-process, spawn,
torchrun and Ray Train launchers over one rank body), :mod:`.train` (:func:`train_supernet`, what
``nas train`` runs) and :mod:`.quick` (the cached quick supernet of ``nas search``).
"""
