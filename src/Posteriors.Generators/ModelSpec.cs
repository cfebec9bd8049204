using Posteriors.Modeling;

namespace Posteriors.Generators
{
    /// <summary>Everything the emitter needs about one model, as plain values (no symbols: the pipeline caches it).</summary>
    internal sealed record ModelSpec(
        string Namespace,
        string Name,
        EquatableArray<ParameterSpec> Parameters,
        LikelihoodSpec Likelihood)
    {
        public string FullName => Namespace.Length == 0 ? Name : Namespace + "." + Name;
    }

    /// <summary>A parameter member: a tensor or a module, its prior and whether it is positive.</summary>
    internal sealed record ParameterSpec(
        string Name,
        bool IsModule,
        bool IsPositive,
        Distribution Distribution,
        EquatableArray<PriorArgumentSpec> Arguments)
    {
        /// <summary>The tree name of a tensor member (a module member prefixes its own parameter names).</summary>
        public string TreeName => IsPositive ? "log_" + Name : Name;
    }

    /// <summary>Where a prior argument's value comes from.</summary>
    internal enum ArgumentSource { Constant, Parameter, Hyper }

    /// <summary>One prior argument: its name in the distribution (loc, scale, ...) and a constant or a member.</summary>
    internal sealed record PriorArgumentSpec(string Name, ArgumentSource Source, double Value, string Member);

    /// <summary>The likelihood method, or the forward method and its outer likelihood.</summary>
    internal sealed record LikelihoodSpec(
        string MethodName,
        bool IsForward,
        EquatableArray<ArgumentSpec> Arguments,
        OutputDistribution Output,
        double Scale,
        string ScaleMember)
    {
        /// <summary>Whether σ of a Normal output is a learned parameter.</summary>
        public bool LearnedScale => ScaleMember.Length > 0;
    }

    /// <summary>A parameter of the likelihood method: one component of the batch.</summary>
    internal sealed record ArgumentSpec(string Name, string Type, bool IsTensor);
}
