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

    /// <summary>How a tensor parameter is constrained (its tree leaf is unconstrained).</summary>
    internal enum Constraint { None, Positive, Interval, Simplex, Ordered, CholeskyCorrelation }

    /// <summary>A parameter member: a tensor or a module, its prior and its constraint.</summary>
    internal sealed record ParameterSpec(
        string Name,
        bool IsModule,
        Constraint Constraint,
        Distribution Distribution,
        EquatableArray<PriorArgumentSpec> Arguments,
        EquatableArray<PriorArgumentSpec> Bounds)
    {
        public bool IsPositive => Constraint == Constraint.Positive;

        /// <summary>Constrained through a <c>Bijectors</c> map (positive parameters use the log directly).</summary>
        public bool IsMapped => Constraint is not (Constraint.None or Constraint.Positive);

        /// <summary>The tree name of a tensor member (a module member prefixes its own parameter names).</summary>
        public string TreeName => Constraint switch
        {
            Constraint.Positive => "log_" + Name,
            Constraint.Interval => "logit_" + Name,
            Constraint.Simplex => "stick_" + Name,
            Constraint.Ordered => "ordered_" + Name,
            Constraint.CholeskyCorrelation => "cpc_" + Name,
            _ => Name,
        };

        /// <summary>The name of the <c>Bijectors</c> methods for a mapped constraint.</summary>
        public string BijectorName => Constraint == Constraint.CholeskyCorrelation ? "CholeskyCorrelation" : Constraint.ToString();
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
