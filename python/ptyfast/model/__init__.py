"""The physical model: geometry, probes, scans, detector, experiment, dataset.

This is ptyfast's own acquisition model (wave 2), a layer with explicit arguments and no
global state. The PtychoPINN-named modules (``diffsim``, ``raw_data``, ``loader``, ...) may use
it; it never imports them at module level (conversions to PtychoPINN types live on the
PtychoPINN side and are reached through local imports).

The public names are re-exported at the top level: ``ptyfast.Geometry``, ``ptyfast.probes``,
``ptyfast.scans``, ``ptyfast.Detector``, ``ptyfast.Experiment``, ``ptyfast.simulate``,
``ptyfast.Dataset``, ``ptyfast.replay``.
"""
