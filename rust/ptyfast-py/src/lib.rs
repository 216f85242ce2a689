//! `ptyfast._core`: argument conversion, GIL release and error mapping over `ptyfast-core`.
//! Nothing else lives here; `ptyfast._kernels` validates every argument before calling in.

use numpy::{
    Complex32, IntoPyArray, PyArray1, PyArray2, PyArray3, PyArray4, PyReadonlyArray1,
    PyReadonlyArray2, PyReadonlyArray3, PyReadonlyArray4, PyReadwriteArray4,
};
use ptyfast_core as core;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pyo3::create_exception!(
    _core,
    PtyfastError,
    PyValueError,
    "Raised when a ptyfast kernel rejects its input."
);

/// Runs `f` with the GIL released and maps the core's error to `PtyfastError`.
fn detach<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: Send + FnOnce() -> core::Result<T>,
{
    py.detach(f)
        .map_err(|e| PtyfastError::new_err(e.to_string()))
}

#[pyfunction]
fn extract_patches<'py>(
    py: Python<'py>,
    object: PyReadonlyArray2<'py, Complex32>,
    positions: PyReadonlyArray2<'py, f64>,
    n: usize,
) -> PyResult<Bound<'py, PyArray3<Complex32>>> {
    let (o, p) = (object.as_array(), positions.as_array());
    Ok(detach(py, || core::patches::extract_patches(o, p, n))?.into_pyarray(py))
}

#[pyfunction]
fn diffract<'py>(
    py: Python<'py>,
    patches: PyReadonlyArray3<'py, Complex32>,
    probe: PyReadonlyArray2<'py, Complex32>,
    scale: f32,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let (pa, pr) = (patches.as_array(), probe.as_array());
    Ok(detach(py, || core::diffraction::diffract(pa, pr, scale))?.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (amplitudes, seed, first_index, version="v1"))]
fn poisson_amplitudes<'py>(
    py: Python<'py>,
    amplitudes: PyReadonlyArray3<'py, f32>,
    seed: u64,
    first_index: u64,
    version: &str,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let a = amplitudes.as_array();
    let v = core::noise::PoissonStream::from_name(version);
    let run = || core::noise::poisson_amplitudes(a, seed, first_index, v?);
    Ok(detach(py, run)?.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (rates, seed, stream, version="v1"))]
fn poisson_counts<'py>(
    py: Python<'py>,
    rates: PyReadonlyArray1<'py, f64>,
    seed: u64,
    stream: u64,
    version: &str,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let r = rates.as_array();
    let v = core::noise::PoissonStream::from_name(version);
    Ok(detach(py, || core::noise::poisson_counts(r, seed, stream, v?))?.into_pyarray(py))
}

#[pyfunction]
fn illuminated_energy<'py>(
    py: Python<'py>,
    object: PyReadonlyArray2<'py, Complex32>,
    positions: PyReadonlyArray2<'py, f64>,
    probe: PyReadonlyArray2<'py, Complex32>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (o, p, pr) = (object.as_array(), positions.as_array(), probe.as_array());
    Ok(detach(py, || core::simulate::illuminated_energy(o, p, pr))?.into_pyarray(py))
}

type SimulateOut<'py> = (
    Bound<'py, PyArray3<f32>>,
    Option<Bound<'py, PyArray3<Complex32>>>,
);

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (object, positions, probe, scale, seed, first_index, divide_by_scale, return_patches))]
fn simulate<'py>(
    py: Python<'py>,
    object: PyReadonlyArray2<'py, Complex32>,
    positions: PyReadonlyArray2<'py, f64>,
    probe: PyReadonlyArray2<'py, Complex32>,
    scale: f32,
    seed: Option<u64>,
    first_index: u64,
    divide_by_scale: bool,
    return_patches: bool,
) -> PyResult<SimulateOut<'py>> {
    let (o, p, pr) = (object.as_array(), positions.as_array(), probe.as_array());
    let noise = seed.map(|seed| core::simulate::Noise { seed, first_index });
    let sim = detach(py, || {
        core::simulate::simulate(o, p, pr, scale, noise, divide_by_scale, return_patches)
    })?;
    Ok((
        sim.amplitudes.into_pyarray(py),
        sim.patches.map(|a| a.into_pyarray(py)),
    ))
}

type KnnOut<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f64>>);

#[pyfunction]
fn knn<'py>(
    py: Python<'py>,
    points: PyReadonlyArray2<'py, f64>,
    queries: PyReadonlyArray2<'py, f64>,
    k: usize,
) -> PyResult<KnnOut<'py>> {
    let (p, q) = (points.as_array(), queries.as_array());
    let (idx, dist) = detach(py, || core::knn::knn(p, q, k))?;
    Ok((idx.into_pyarray(py), dist.into_pyarray(py)))
}

fn to_indices(a: Option<PyReadonlyArray1<'_, i64>>) -> Option<Vec<usize>> {
    // Non-negativity is checked by the validating Python layer.
    a.map(|a| a.as_array().iter().map(|&v| v.max(0) as usize).collect())
}

#[pyfunction]
#[pyo3(signature = (x, y, nsamples, k, c, seed, seed_indices=None))]
#[allow(clippy::too_many_arguments)]
fn sample_then_group<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    nsamples: usize,
    k: usize,
    c: usize,
    seed: u32,
    seed_indices: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let (xs, ys) = (x.as_slice()?, y.as_slice()?);
    let si = to_indices(seed_indices);
    let g = detach(py, || {
        core::grouping::sample_then_group(xs, ys, nsamples, k, c, seed, si.as_deref())
    })?;
    Ok(g.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (x, y, nsamples, k, c, seed, seed_indices=None))]
#[allow(clippy::too_many_arguments)]
fn oversample_groups<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    nsamples: usize,
    k: usize,
    c: usize,
    seed: u32,
    seed_indices: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let (xs, ys) = (x.as_slice()?, y.as_slice()?);
    let si = to_indices(seed_indices);
    let g = detach(py, || {
        core::grouping::oversample_groups(xs, ys, nsamples, k, c, seed, si.as_deref())
    })?;
    Ok(g.into_pyarray(py))
}

#[pyfunction]
fn gather_groups<'py>(
    py: Python<'py>,
    diff3d: PyReadonlyArray3<'py, f32>,
    groups: PyReadonlyArray2<'py, i64>,
) -> PyResult<Bound<'py, PyArray4<f32>>> {
    let (d, g) = (diff3d.as_array(), groups.as_array());
    Ok(detach(py, || core::grouping::gather_groups(d, g))?.into_pyarray(py))
}

#[pyfunction]
fn gather_groups_scaled<'py>(
    py: Python<'py>,
    diff3d: PyReadonlyArray3<'py, f32>,
    groups: PyReadonlyArray2<'py, i64>,
    scale: f32,
) -> PyResult<Bound<'py, PyArray4<f32>>> {
    let (d, g) = (diff3d.as_array(), groups.as_array());
    Ok(detach(py, || core::grouping::gather_groups_scaled(d, g, scale))?.into_pyarray(py))
}

#[pyfunction]
fn pattern_energies<'py>(
    py: Python<'py>,
    diff3d: PyReadonlyArray3<'py, f32>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let d = diff3d.as_array();
    Ok(detach(py, || Ok(core::grouping::pattern_energies(d)))?.into_pyarray(py))
}

type GatherPair<'py> = (Bound<'py, PyArray4<f32>>, Bound<'py, PyArray4<f32>>);

#[pyfunction]
fn gather_groups_normalized<'py>(
    py: Python<'py>,
    diff3d: PyReadonlyArray3<'py, f32>,
    groups: PyReadonlyArray2<'py, i64>,
    scale: f32,
) -> PyResult<GatherPair<'py>> {
    let (d, g) = (diff3d.as_array(), groups.as_array());
    let (a, b) = detach(py, || core::grouping::gather_groups_normalized(d, g, scale))?;
    Ok((a.into_pyarray(py), b.into_pyarray(py)))
}

#[pyfunction]
fn gather_groups_complex<'py>(
    py: Python<'py>,
    patches: PyReadonlyArray3<'py, Complex32>,
    groups: PyReadonlyArray2<'py, i64>,
) -> PyResult<Bound<'py, PyArray4<Complex32>>> {
    let (p, g) = (patches.as_array(), groups.as_array());
    Ok(detach(py, || core::grouping::gather_groups_complex(p, g))?.into_pyarray(py))
}

fn to_i64_vec(v: Vec<usize>) -> Vec<i64> {
    v.into_iter().map(|i| i as i64).collect()
}

/// Test hook: legacy `RandomState(seed).permutation(n)`.
#[pyfunction]
fn legacy_permutation<'py>(
    py: Python<'py>,
    seed: u32,
    n: usize,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let p = detach(py, || {
        Ok(core::legacy_rng::LegacyRandomState::new(seed).permutation(n))
    })?;
    Ok(to_i64_vec(p).into_pyarray(py))
}

/// Test hook: legacy `RandomState(seed).choice(n, size, replace)`.
#[pyfunction]
fn legacy_choice<'py>(
    py: Python<'py>,
    seed: u32,
    n: usize,
    size: usize,
    replace: bool,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let p = detach(py, || {
        core::legacy_rng::LegacyRandomState::new(seed).choice(n, size, replace)
    })?;
    Ok(to_i64_vec(p).into_pyarray(py))
}

/// Test hook: legacy `RandomState(seed).random_sample(size)`.
#[pyfunction]
fn legacy_uniform<'py>(
    py: Python<'py>,
    seed: u32,
    size: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let v = detach(py, || {
        let mut r = core::legacy_rng::LegacyRandomState::new(seed);
        Ok((0..size).map(|_| r.next_double()).collect::<Vec<f64>>())
    })?;
    Ok(v.into_pyarray(py))
}

/// Test hook: the raw 32-bit MT19937 outputs of `RandomState(seed)`.
#[pyfunction]
fn legacy_raw<'py>(py: Python<'py>, seed: u32, size: usize) -> PyResult<Bound<'py, PyArray1<u32>>> {
    let v = detach(py, || {
        let mut r = core::legacy_rng::LegacyRandomState::new(seed);
        Ok((0..size).map(|_| r.next_u32()).collect::<Vec<u32>>())
    })?;
    Ok(v.into_pyarray(py))
}

/// The instruction-set level the kernels run at (`baseline`, `avx2` or `avx512`).
#[pyfunction]
fn simd_level() -> &'static str {
    core::simd::level().name()
}

/// Number of threads in the kernels' pool (`RAYON_NUM_THREADS`, else the core count).
#[pyfunction]
fn num_threads() -> usize {
    core::num_threads()
}

type GridPair<'py> = (Bound<'py, PyArray4<f32>>, Bound<'py, PyArray4<f32>>);

#[pyfunction]
fn extract_grid_patches<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, Complex32>,
    positions: PyReadonlyArray2<'py, f64>,
    n: usize,
    c: usize,
) -> PyResult<GridPair<'py>> {
    let (im, p) = (image.as_array(), positions.as_array());
    let (re, imag) = detach(py, || core::grid::extract_grid_patches(im, p, n, c))?;
    Ok((re.into_pyarray(py), imag.into_pyarray(py)))
}

#[pyfunction]
fn extract_grid_patches_into<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, Complex32>,
    positions: PyReadonlyArray2<'py, f64>,
    mut out_re: PyReadwriteArray4<'py, f32>,
    mut out_im: Option<PyReadwriteArray4<'py, f32>>,
) -> PyResult<()> {
    let (im, p) = (image.as_array(), positions.as_array());
    let (re, imag) = (
        out_re.as_array_mut(),
        out_im.as_mut().map(|o| o.as_array_mut()),
    );
    detach(py, || {
        core::grid::extract_grid_patches_into(im, p, re, imag)
    })
}

#[pyfunction]
#[pyo3(signature = (amplitude, phase, probe, scale, seed, first_index))]
fn illuminate_groups<'py>(
    py: Python<'py>,
    mut amplitude: PyReadwriteArray4<'py, f32>,
    phase: Option<PyReadonlyArray4<'py, f32>>,
    probe: PyReadonlyArray2<'py, Complex32>,
    scale: f32,
    seed: Option<u64>,
    first_index: u64,
) -> PyResult<Bound<'py, PyArray4<f32>>> {
    let ph = phase.as_ref().map(|p| p.as_array());
    let (a, pr) = (amplitude.as_array_mut(), probe.as_array());
    let noise = seed.map(|seed| core::simulate::Noise { seed, first_index });
    let x = detach(py, || {
        core::grid::illuminate_groups(a, ph, pr, scale, noise)
    })?;
    Ok(x.into_pyarray(py))
}

#[pyfunction]
fn channel_energies<'py>(
    py: Python<'py>,
    amplitude: PyReadonlyArray4<'py, f32>,
    probe: PyReadonlyArray2<'py, Complex32>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (a, pr) = (amplitude.as_array(), probe.as_array());
    Ok(detach(py, || core::grid::channel_energies(a, pr))?.into_pyarray(py))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("PtyfastError", m.py().get_type::<PtyfastError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(extract_patches, m)?)?;
    m.add_function(wrap_pyfunction!(diffract, m)?)?;
    m.add_function(wrap_pyfunction!(poisson_amplitudes, m)?)?;
    m.add_function(wrap_pyfunction!(poisson_counts, m)?)?;
    m.add_function(wrap_pyfunction!(illuminated_energy, m)?)?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(knn, m)?)?;
    m.add_function(wrap_pyfunction!(sample_then_group, m)?)?;
    m.add_function(wrap_pyfunction!(oversample_groups, m)?)?;
    m.add_function(wrap_pyfunction!(gather_groups, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(extract_grid_patches, m)?)?;
    m.add_function(wrap_pyfunction!(extract_grid_patches_into, m)?)?;
    m.add_function(wrap_pyfunction!(illuminate_groups, m)?)?;
    m.add_function(wrap_pyfunction!(channel_energies, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(gather_groups_scaled, m)?)?;
    m.add_function(wrap_pyfunction!(pattern_energies, m)?)?;
    m.add_function(wrap_pyfunction!(gather_groups_normalized, m)?)?;
    m.add_function(wrap_pyfunction!(gather_groups_complex, m)?)?;
    m.add_function(wrap_pyfunction!(legacy_permutation, m)?)?;
    m.add_function(wrap_pyfunction!(legacy_choice, m)?)?;
    m.add_function(wrap_pyfunction!(legacy_uniform, m)?)?;
    m.add_function(wrap_pyfunction!(legacy_raw, m)?)?;
    Ok(())
}
