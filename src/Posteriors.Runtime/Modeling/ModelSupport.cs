using System.ComponentModel;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Modeling;

/// <summary>Helpers the generated model code calls; not meant to be called directly.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class ModelSupport
{
    /// <summary>Throws unless the data set size has been set.</summary>
    /// <exception cref="InvalidOperationException">N is not positive.</exception>
    public static long RequireDatasetSize(long n, string model) =>
        n > 0 ? n : throw new InvalidOperationException(
            $"{model}.DatasetSize is not set (it is {n}). Set it to N, the number of data points, before evaluating the " +
            "log posterior: the prior is divided by N (docs/ALGORITHMS.md §1).");

    /// <summary>Validates a data set size given to the setter.</summary>
    /// <exception cref="ArgumentOutOfRangeException">N ≤ 0.</exception>
    public static long ValidDatasetSize(long n, string model) =>
        n > 0 ? n : throw new ArgumentOutOfRangeException("DatasetSize", n, $"{model}.DatasetSize must be positive (the number of data points).");

    /// <summary>The value of a tensor member, or a clear error when it is null.</summary>
    /// <exception cref="InvalidOperationException">The member is null.</exception>
    public static T Member<T>(T? value, string model, string member) where T : class =>
        value ?? throw new InvalidOperationException($"{model}.{member} is null: give it an initial value.");

    /// <summary>The tree's leaf <paramref name="name"/>.</summary>
    public static Tensor Leaf(ParameterTree parameters, string name) => parameters[name];

    /// <summary>The leaves named <paramref name="prefix"/>.x, renamed x, in the tree's order.</summary>
    public static ParameterTree Subtree(ParameterTree parameters, string prefix)
    {
        var dotted = prefix + ".";
        var leaves = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, value) in parameters)
            if (name.StartsWith(dotted, StringComparison.Ordinal))
                leaves.Add(new(name.Substring(dotted.Length), value));
        if (leaves.Count == 0)
            throw new KeyNotFoundException($"The tree has no parameters of module '{prefix}'. It has: {string.Join(", ", parameters.Names)}.");
        return new ParameterTree(leaves);
    }

    /// <summary>A module's parameters named under <paramref name="prefix"/>.</summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> Prefixed(string prefix, ParameterTree tree)
    {
        foreach (var (name, value) in tree) yield return new(prefix + "." + name, value);
    }

    /// <summary>The tree names of module member <paramref name="member"/>'s parameters (<c>Member.weight</c>, ...).</summary>
    /// <exception cref="InvalidOperationException">The member is null.</exception>
    public static IEnumerable<string> ModuleNames(nn.Module? module, string model, string member) =>
        ParameterTree.FromModule(Member(module, model, member)).Names.Select(name => member + "." + name);

    /// <summary>Copies of module member <paramref name="member"/>'s parameters, named under it (initial values).</summary>
    /// <exception cref="InvalidOperationException">The member is null.</exception>
    public static IEnumerable<KeyValuePair<string, Tensor>> ModuleCopies(nn.Module? module, string model, string member)
    {
        foreach (var (name, value) in ParameterTree.FromModule(Member(module, model, member)))
            yield return new(member + "." + name, value.detach().clone());
    }

    /// <summary>A prior draw for every parameter of module member <paramref name="member"/>, named under it.</summary>
    /// <exception cref="InvalidOperationException">The member is null.</exception>
    public static List<KeyValuePair<string, Tensor>> SampleModule(nn.Module? module, string model, string member, Distribution distribution,
        PriorArgument loc = default, PriorArgument scale = default, PriorArgument df = default, PriorArgument shape = default,
        PriorArgument rate = default, Generator? generator = null)
    {
        var leaves = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, value) in ParameterTree.FromModule(Member(module, model, member)))
            leaves.Add(new(member + "." + name, Priors.Sample(value, distribution, loc, scale, df, shape, rate, generator: generator)));
        return leaves;
    }

    /// <summary>Σ of the prior over the tree's leaves of module member <paramref name="member"/> (<c>member.x</c>).</summary>
    public static Tensor ModuleLogPrior(ParameterTree parameters, string member, Distribution distribution,
        PriorArgument loc = default, PriorArgument scale = default, PriorArgument df = default, PriorArgument shape = default,
        PriorArgument rate = default) =>
        SumOver(Subtree(parameters, member), leaf => Priors.LogProb(leaf, distribution, loc, scale, df, shape, rate));

    /// <summary>
    /// The closed-form gradient of <see cref="ModuleLogPrior"/> for every parameter of module member <paramref name="member"/>,
    /// named under it (<c>member.x</c>), in the tree's order.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> ModuleLogPriorGradient(ParameterTree parameters, string member, Distribution distribution,
        PriorArgument loc = default, PriorArgument scale = default, PriorArgument df = default, PriorArgument shape = default,
        PriorArgument rate = default) =>
        Prefixed(member, Subtree(parameters, member).Map(leaf => Priors.Differentiate(leaf, distribution, loc, scale, df, shape, rate).Gradient));

    /// <summary>
    /// Points module member <paramref name="member"/> at the tree's leaves <c>member.x</c> (<see cref="ModuleBinding.Bind"/>);
    /// returns the bound leaves, named under the member, to differentiate.
    /// </summary>
    /// <exception cref="InvalidOperationException">The member is null.</exception>
    public static IEnumerable<KeyValuePair<string, Tensor>> BindModule(nn.Module? module, string model, string member, ParameterTree parameters) =>
        Prefixed(member, ModuleBinding.Bind(Member(module, model, member), Subtree(parameters, member)));

    /// <summary>Σ over a tree's leaves of a per-leaf log prior.</summary>
    public static Tensor SumOver(ParameterTree tree, Func<Tensor, Tensor> logPrior)
    {
        Tensor? total = null;
        foreach (var leaf in tree.Leaves)
        {
            var term = logPrior(leaf);
            total = total is null ? term : total + term;
        }
        return total ?? zeros(Array.Empty<long>());
    }

    /// <summary>log θ of a positive member's value, checked.</summary>
    /// <exception cref="InvalidOperationException">The value has entries that are not positive and finite.</exception>
    public static Tensor Unconstrain(Tensor? value, string model, string member)
    {
        value = Member(value, model, member);
        using var _ = no_grad();
        if (!(value > 0).logical_and(isfinite(value)).all().item<bool>())
            throw new InvalidOperationException(
                $"{model}.{member} is [Positive] but its value has entries that are not positive and finite.");
        return value.detach().log();
    }

    /// <summary>The unconstrained value of a constrained member, checked: an initial value outside the constraint has no preimage.</summary>
    /// <exception cref="InvalidOperationException">Some entries are not finite.</exception>
    public static Tensor Unconstrained(Tensor u, string model, string member)
    {
        using var _ = no_grad();
        if (!isfinite(u).all().item<bool>())
            throw new InvalidOperationException(
                $"{model}.{member}'s value is outside its constraint (the unconstrained value has non-finite entries); give it a valid initial value.");
        return u.detach();
    }

    /// <summary>Sorted along the last dimension (ordered prior draws: order statistics of iid draws).</summary>
    public static Tensor Sorted(Tensor draws) => draws.sort(-1).Values;

    /// <summary>
    /// Checks that a likelihood returned one value per datum: shape [B], where B is the leading dimension of the batch's
    /// first tensor (<paramref name="batchSize"/>; negative when the batch has no tensor, and only the rank is checked).
    /// </summary>
    /// <exception cref="InvalidOperationException">The result is not of shape [B]; names the method, the shape and B.</exception>
    public static Tensor PerDatum(Tensor logLikelihoods, long batchSize, string model, string method)
    {
        ArgumentNullException.ThrowIfNull(logLikelihoods);
        if (logLikelihoods.dim() != 1 || (batchSize >= 0 && logLikelihoods.shape[0] != batchSize))
            throw new InvalidOperationException(
                $"{model}.{method} returned shape {ParameterTree.Shape(logLikelihoods)}; a [Likelihood] returns one value per datum, " +
                (batchSize >= 0 ? $"shape [B] = [{batchSize}] (B is the leading dimension of the batch's first tensor). " : "shape [B]. ") +
                "Sum over event dimensions only (never dimension 0); the generated log posterior takes the mean over the batch.");
        return logLikelihoods;
    }

    /// <summary>
    /// Per-datum log N(y; f, σ²) summed over the non-batch dimensions of the outputs f ([B] or [B, ...]), with σ a tensor
    /// (a learned scale: one element, or one per output) that gradients flow into.
    /// </summary>
    public static Tensor NormalOutput(Tensor outputs, Tensor targets, Tensor sigma)
    {
        var f = outputs.dim() == 1 ? outputs.unsqueeze(1) : outputs.reshape(outputs.shape[0], -1);
        var y = targets.reshape(f.shape).to_type(f.dtype);
        return LogProb.Normal(y, f, sigma).sum(1);
    }

    /// <summary>The single value of a one-element tensor member.</summary>
    /// <exception cref="InvalidOperationException">The member is null or has more than one element.</exception>
    public static double ScalarValue(Tensor? value, string model, string member)
    {
        value = Member(value, model, member);
        if (value.numel() != 1)
            throw new InvalidOperationException($"{model}.{member} has shape {ParameterTree.Shape(value)}; a learned σ of a Normal output has one element.");
        using var _ = no_grad();
        return value.to_type(ScalarType.Float64).item<double>();
    }

    /// <summary>The leading dimension of a batch component: B.</summary>
    public static long BatchSize(Tensor first) => first is null || first.dim() == 0 ? -1 : first.shape[0];
}
