namespace Posteriors;

/// <summary>
/// A hyperparameter that is a constant or a function of the step counter (learning rates, temperatures).
/// Doubles convert implicitly, so <c>lr: 1e-2</c> and <c>lr: Schedule.Of(t =&gt; 1e-2 / (1 + t))</c> both work.
/// </summary>
public sealed class Schedule
{
    private readonly Func<long, double>? _f;
    private readonly double _constant;

    private Schedule(double constant, Func<long, double>? f)
    {
        _constant = constant;
        _f = f;
    }

    /// <summary>A constant schedule.</summary>
    public static Schedule Constant(double value) => new(value, null);

    /// <summary>A schedule computed from the step counter (0 at the first update).</summary>
    public static Schedule Of(Func<long, double> valueAtStep) =>
        new(double.NaN, valueAtStep ?? throw new ArgumentNullException(nameof(valueAtStep)));

    /// <summary>
    /// Cosine annealing from <paramref name="start"/> at step 0 to <paramref name="end"/> at step <paramref name="steps"/>
    /// (and after): start + (end − start)(1 − cos(π t / steps))/2. Annealing ε at T = 0 is the usual learning-rate decay
    /// of deep ensembles; at T &gt; 0 a decreasing ε is SGMCMC with decreasing step sizes.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is negative or not finite, or <paramref name="steps"/> is not positive.</exception>
    public static Schedule Cosine(double start, double end, long steps)
    {
        Check.NonNegative(start, nameof(start));
        Check.NonNegative(end, nameof(end));
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "The number of annealing steps must be positive.");
        return Of(t => t >= steps ? end : start + (end - start) * (1 - Math.Cos(Math.PI * t / steps)) / 2);
    }

    /// <summary>A constant schedule.</summary>
    public static implicit operator Schedule(double value) => Constant(value);

    /// <summary>Whether the value is the same at every step.</summary>
    public bool IsConstant => _f is null;

    /// <summary>The value at <paramref name="step"/>.</summary>
    public double At(long step) => _f is null ? _constant : _f(step);

    /// <summary>
    /// The value at <paramref name="step"/>, checked: finite, non-negative, and positive when <paramref name="positive"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Names the hyperparameter, the value and the step.</exception>
    public double At(long step, string name, bool positive = false)
    {
        var v = At(step);
        if (!double.IsFinite(v) || v < 0 || (positive && v == 0))
            throw new ArgumentOutOfRangeException(name, v,
                $"Hyperparameter '{name}' is {v} at step {step}; it must be finite and {(positive ? "positive" : "non-negative")}.");
        return v;
    }

    /// <summary>Checks a constant schedule at construction time (a function is checked at every use).</summary>
    internal Schedule Validated(string name, bool positive = false)
    {
        if (_f is null) At(0, name, positive);
        return this;
    }

    /// <inheritdoc />
    public override string ToString() => _f is null ? _constant.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : "schedule";
}

/// <summary>Checks of hyperparameters given as plain numbers.</summary>
public static class Check
{
    /// <summary>Throws unless <paramref name="value"/> is finite and ≥ 0 (&gt; 0 when <paramref name="positive"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Names the hyperparameter and the value.</exception>
    public static double NonNegative(double value, string name, bool positive = false)
    {
        if (!double.IsFinite(value) || value < 0 || (positive && value == 0))
            throw new ArgumentOutOfRangeException(name, value,
                $"Hyperparameter '{name}' is {value}; it must be finite and {(positive ? "positive" : "non-negative")}.");
        return value;
    }

    /// <summary>Throws unless <paramref name="value"/> is finite and &gt; 0.</summary>
    public static double Positive(double value, string name) => NonNegative(value, name, positive: true);

    /// <summary>Throws unless <paramref name="value"/> is finite.</summary>
    public static double Finite(double value, string name) =>
        double.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(name, value, $"Hyperparameter '{name}' is {value}; it must be finite.");

    /// <summary>Throws unless <paramref name="value"/> is one of <typeparamref name="TEnum"/>'s named values.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Names the option, its value and the values it may take.</exception>
    public static TEnum Defined<TEnum>(TEnum value, string name) where TEnum : struct, Enum =>
        Enum.IsDefined(value) ? value
            : throw new ArgumentOutOfRangeException(name, value, $"'{name}' is {value}; it must be one of {string.Join(", ", Enum.GetNames<TEnum>())}.");
}
