"""Probes: a zone plate through focus, Zernike aberrations, incoherent modes, a file round trip.

Every builder returns complex64 with unit total intensity; the checks below are the physics
each one promises (focal length, agreement with angular-spectrum propagation, mode powers).
"""

import numpy as np

from ptyfast import Geometry, probes

g = Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=128)
print(f"wavelength {g.wavelength_m * 1e12:.1f} pm, object pixel {g.object_pixel_m * 1e9:.1f} nm")

# A zone plate: D = 160 µm, outermost zone 50 nm, a 30 % central stop; f = D·Δr/λ.
D, dr = 160e-6, 50e-9
print(f"zone plate focal length f = {D * dr / g.wavelength_m * 1e3:.1f} mm")
focus = probes.fresnel_zone_plate(g, D, dr, central_stop=0.3)
out = probes.fresnel_zone_plate(g, D, dr, central_stop=0.3, defocus_m=5e-4)
for name, p in (("in focus", focus), ("0.5 mm downstream", out)):
    assert p.dtype == np.complex64 and np.isclose((np.abs(p) ** 2).sum(), 1.0, rtol=1e-5)
    spot = (np.abs(p) ** 2 > 0.5 * (np.abs(p) ** 2).max()).sum()
    print(f"  {name}: {spot} pixels above half the peak intensity")

# Angular-spectrum propagation of the focus gives the same defocused field (up to a phase).
moved = probes.propagate(focus, 5e-4, g)
overlap = abs(np.vdot(moved, out)) / (np.linalg.norm(moved) * np.linalg.norm(out))
print(f"propagate(focus, 0.5 mm) vs the zone plate at 0.5 mm: overlap {overlap:.4f}")
assert overlap > 0.99
assert (np.abs(moved) ** 2).sum() <= 1.0 + 1e-6  # propagate does not renormalise

# Zernike: 1 rad of x coma (Noll j = 8), then random aberrations recorded by their seed.
coma = np.zeros(8)
coma[7] = 1.0
aberrated = probes.zernike(128, coma, aperture=0.25)
random_a = probes.zernike(128, seed=4, rms_rad=1.0)
assert np.array_equal(random_a, probes.zernike(128, seed=4, rms_rad=1.0))  # same seed, same bits

# Three incoherent modes of the defocused zone plate, powers 4:2:1.
stack = probes.modes(out, 3, decay=0.5)
powers = (np.abs(stack.astype(np.complex128)) ** 2).sum(axis=(1, 2))
print("mode powers:", np.round(powers, 4).tolist())
np.testing.assert_allclose(powers, np.array([4, 2, 1]) / 7, atol=1e-6)
gram = stack.reshape(3, -1).astype(np.complex128)
gram = gram.conj() @ gram.T
assert np.abs(gram - np.diag(np.diag(gram))).max() < 1e-6  # orthogonal

# A recipe records how the probe was built; build() makes the same bits again.
r = probes.recipe(
    "fresnel_zone_plate", geometry=g, diameter_m=D, outer_zone_m=dr, central_stop=0.3,
    defocus_m=5e-4, operations=[{"op": "modes", "n": 3, "decay": 0.5}],
)  # fmt: skip
assert np.array_equal(probes.build(r), stack)

# An experimental probe (here our own, saved as PtychoPINN's probeGuess) read back.
np.savez("probe.npz", probeGuess=aberrated * 3.0)
loaded = probes.load("probe.npz")
assert np.allclose(loaded, aberrated, atol=1e-6)  # renormalised to unit intensity
print("wrote and read back probe.npz:", loaded.shape, loaded.dtype)
