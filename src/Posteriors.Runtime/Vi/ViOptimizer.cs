using Posteriors.Optim;
using Posteriors.Trees;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Vi;

/// <summary>
/// The optimizer plumbing VI shares with <see cref="TorchOptim"/>: variational parameters held as TorchSharp
/// <see cref="Parameter"/>s, the optimizer's moments copied through its state dictionary.
/// </summary>
internal static class ViOptimizer
{
    public static ParameterTree AsParameters(ParameterTree values) =>
        values.Map(t => (Tensor)new Parameter(t.detach().clone(), requires_grad: true));

    public static optim.Optimizer Create(Func<IEnumerable<Parameter>, optim.Optimizer> factory, IEnumerable<Tensor> parameters) =>
        factory(parameters.Cast<Parameter>().ToList()) ?? throw new InvalidOperationException("The optimizer factory returned null.");

    public static byte[] Save(optim.Optimizer? optimizer, byte[]? pending) =>
        optimizer is null ? pending ?? Array.Empty<byte>() : TorchOptim<object>.SaveOptimizer(optimizer);

    public static optim.Optimizer Restore(Func<IEnumerable<Parameter>, optim.Optimizer> factory, IEnumerable<Tensor> parameters, byte[]? saved)
    {
        var optimizer = Create(factory, parameters);
        if (saved is { Length: > 0 }) TorchOptim<object>.LoadOptimizer(optimizer, saved);
        return optimizer;
    }

    /// <summary>Hands the gradients of the NELBO to the optimizer's parameters and steps it.</summary>
    public static void Step(optim.Optimizer optimizer, IReadOnlyList<Tensor> parameters, IReadOnlyList<Tensor> gradients)
    {
        using (no_grad())
        {
            for (var i = 0; i < parameters.Count; i++)
                parameters[i].grad = gradients[i].detach().DetachFromDisposeScope();
        }
        optimizer.step();
    }

    public static Schedule CheckSamples(int samples, Schedule? temperature)
    {
        if (samples <= 0) throw new ArgumentOutOfRangeException(nameof(samples), samples, "The number of Monte Carlo samples must be positive.");
        return (temperature ?? 1.0).Validated("temperature");
    }
}
