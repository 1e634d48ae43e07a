"""Supernet training: the loop and its seams.

:mod:`.trainer` (the loop over ``train_step``), :mod:`.recipe` (recipes as files), :mod:`.optim`
and :mod:`.sliced_optim`, :mod:`.losses`, :mod:`.precision`, :mod:`.samplers`, :mod:`.distributed`
and :mod:`.launch` (multi-process runs), :mod:`.train` (:func:`train_supernet`, what
``nas train`` runs) and :mod:`.quick` (the cached quick supernet of ``nas search``).
"""
