using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Vi;

/// <summary>
/// What every Gaussian VI state holds besides its scale parameters: the mean μ, the optimizer over all variational
/// parameters, the step, the seed of the reparameterisation noise, and the last log posterior and NELBO.
/// </summary>
public abstract class ViState : IAlgorithmState
{
    /// <summary>Creates the common part of a state.</summary>
    private protected ViState(ParameterTree mean, optim.Optimizer? optimizer, byte[]? pendingOptimizerState,
        long step, long seed, Tensor logPosterior, Tensor nelbo)
    {
        Params = mean;
        Optimizer = optimizer;
        PendingOptimizerState = pendingOptimizerState;
        Step = step;
        Seed = seed;
        LogPosterior = logPosterior;
        Nelbo = nelbo;
    }

    /// <summary>The variational mean μ (TorchSharp Parameters the optimizer updates).</summary>
    public ParameterTree Params { get; }

    /// <summary>The optimizer; <c>null</c> for a loaded state until its first update recreates it.</summary>
    public optim.Optimizer? Optimizer { get; internal set; }

    internal byte[]? PendingOptimizerState { get; set; }

    /// <inheritdoc />
    public long Step { get; internal set; }

    /// <summary>The seed of the reparameterisation noise (step t uses the stream (seed, t)).</summary>
    public long Seed { get; }

    /// <summary>mean_s log π(θ_s) at the last update.</summary>
    public Tensor LogPosterior { get; internal set; }

    /// <summary>The NELBO estimate at the last update (NaN before the first).</summary>
    public Tensor Nelbo { get; internal set; }

    /// <summary>Writes the fields every VI state has.</summary>
    private protected void WriteCommon(StateRecord record)
    {
        record.Set("mean", Params);
        record.Set("step", Step);
        record.Set("seed", Seed);
        record.Set("logPosterior", LogPosterior);
        record.Set("nelbo", Nelbo);
        record.Set("optimizer", tensor(ViOptimizer.Save(Optimizer, PendingOptimizerState), dtype: ScalarType.Byte));
    }

    /// <summary>Reads back what <see cref="WriteCommon"/> wrote: mean (as Parameters), optimizer bytes, step, seed, log posterior, NELBO.</summary>
    private protected static (ParameterTree Mean, byte[] Optimizer, long Step, long Seed, Tensor LogPosterior, Tensor Nelbo) ReadCommon(StateRecord record) =>
        (ViOptimizer.AsParameters(record.GetTree("mean")), record.GetTensor("optimizer").bytes.ToArray(), record.GetLong("step"),
            record.GetLong("seed"), record.GetTensor("logPosterior"), record.GetTensor("nelbo"));
}
