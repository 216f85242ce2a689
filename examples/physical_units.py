"""Pixels and metres: ``ptyfast.Geometry`` gives every pixel a size.

Without a geometry ptyfast works in pixels. With one, an object pixel is ``λ·z / (N·Δ)``
(``λ = h·c/E``), and a detector pixel at offset ``q`` pixels from the zero frequency
``[N//2, N//2]`` is the spatial frequency ``q / (N·Δx)``.
"""

import ptyfast

g = ptyfast.Geometry(energy_eV=8000.0, distance_m=2.0, detector_pixel_m=75e-6, N=128)
print(f"wavelength {g.wavelength_m * 1e10:.4f} Å, object pixel {g.object_pixel_m * 1e9:.2f} nm")

# A scan step of 5 object pixels in metres, and the field of view of one pattern.
print(
    f"5 px step = {5 * g.object_pixel_m * 1e9:.1f} nm; "
    f"pattern field of view = {g.N * g.object_pixel_m * 1e6:.3f} µm"
)

# The largest spatial frequency the detector records (its edge, N//2 pixels from the centre).
q_max = (g.N // 2) / (g.N * g.object_pixel_m)
print(
    f"highest recorded frequency: {q_max * 1e-6:.2f} cycles/µm (half-period {0.5e9 / q_max:.1f} nm)"
)
assert ptyfast.Geometry.from_dict(g.to_dict()) == g
