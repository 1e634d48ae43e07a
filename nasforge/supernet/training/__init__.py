"""Supernet training: the loop and its seams.

:mod:`.trainer` (the loop over ``train_step``), :mod:`.callbacks` (throughput, progress bar,
validation, TensorBoard, CSV log, checkpoint cadence), :mod:`.restore` (the named restore steps
of a resume), :mod:`.recipe` (recipes as files), :mod:`.optim` and :mod:`.sliced_optim`,
:mod:`.losses`, :mod:`.precision`, :mod:`.samplers`, :mod:`.distributed` and :mod:`._ray_train`
(multi-process runs), :mod:`.train` (:func:`train_supernet`, what ``nas train`` runs) and
:mod:`.quick` (the cached quick supernet of ``nas search``).
"""
