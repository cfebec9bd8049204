using System.Globalization;
using NUnit.Framework;
using static TorchSharp.torch;

namespace Posteriors.Testing;

/// <summary>Tensor assertions whose failure says what differed: shapes, how many elements, the largest difference and where.</summary>
internal static class TensorAssert
{
    /// <summary>Same shape and bit-identical values (NaN equals NaN).</summary>
    public static void Same(Tensor actual, Tensor expected, string what = "") => Close(actual, expected, 0, 0, what);

    /// <summary>Same shape and |actual − expected| ≤ atol + rtol · |expected| everywhere (NaN equals NaN).</summary>
    public static void Close(Tensor actual, Tensor expected, double rtol = 1e-5, double atol = 1e-8, string what = "")
    {
        var prefix = what.Length > 0 ? what + ": " : "";
        Assert.That(actual.shape, Is.EqualTo(expected.shape), prefix + "shape");
        using var scope = NewDisposeScope();
        var a = actual.detach().to(CPU).to_type(ScalarType.Float64).reshape(-1);
        var e = expected.detach().to(CPU).to_type(ScalarType.Float64).reshape(-1);
        var bothNan = a.isnan().logical_and(e.isnan());
        var difference = (a - e).abs().masked_fill(bothNan, 0).nan_to_num(double.PositiveInfinity);
        var bad = difference.gt(e.abs() * rtol + atol);
        var count = bad.sum().item<long>();
        if (count == 0) return;
        var worst = difference.argmax().item<long>();
        Assert.Fail(string.Create(CultureInfo.InvariantCulture,
            $"{prefix}{count} of {a.shape[0]} elements differ (rtol {rtol}, atol {atol}); largest |Δ| = {difference[worst].item<double>():G6} " +
            $"at flat index {worst}: {a[worst].item<double>():G10} vs {e[worst].item<double>():G10}"));
    }

    /// <summary>Every element finite.</summary>
    public static void Finite(Tensor actual, string what = "")
    {
        using var scope = NewDisposeScope();
        var bad = isfinite(actual.detach()).logical_not().sum().item<long>();
        Assert.That(bad, Is.Zero, $"{(what.Length > 0 ? what + ": " : "")}{bad} of {actual.numel()} elements are NaN or infinite");
    }
}
