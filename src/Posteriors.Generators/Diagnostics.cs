using Microsoft.CodeAnalysis;

namespace Posteriors.Generators
{
    /// <summary>The model DSL's diagnostics. IDs are stable; see AnalyzerReleases.*.md.</summary>
    internal static class Diagnostics
    {
        private const string Category = "Posteriors.Model";

        private static DiagnosticDescriptor Error(string id, string title, string message) =>
            new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        private static DiagnosticDescriptor Warning(string id, string title, string message) =>
            new(id, title, message, Category, DiagnosticSeverity.Warning, isEnabledByDefault: true);

        public static readonly DiagnosticDescriptor NotPartial = Error("PST0001",
            "Model class must be partial",
            "Model class '{0}' must be declared 'partial' so that the generated log posterior can be added to it");

        public static readonly DiagnosticDescriptor UnsupportedShape = Error("PST0002",
            "Model class cannot be generic or nested",
            "Model class '{0}' is {1}; declare models as non-generic top-level classes");

        public static readonly DiagnosticDescriptor NotAParameterType = Error("PST0003",
            "Attribute on a member that cannot be a parameter",
            "'{0}' has [{1}] but is {2}; {3}");

        public static readonly DiagnosticDescriptor InvalidPriorArgument = Error("PST0004",
            "Invalid prior argument",
            "Prior of '{0}': {1}");

        public static readonly DiagnosticDescriptor MissingPrior = Warning("PST0005",
            "Parameter without a prior",
            "'{0}' is a parameter of model '{1}' without a prior; it gets an improper flat prior. Say so with [Prior(Distribution.Flat)], or mark it [Fixed] if it is not learned.");

        public static readonly DiagnosticDescriptor DuplicatePrior = Error("PST0006",
            "Parameter with more than one prior",
            "'{0}' has {1} [Prior] attributes; give each parameter exactly one prior");

        public static readonly DiagnosticDescriptor NoLikelihood = Error("PST0007",
            "Model without a likelihood",
            "Model class '{0}' has no [Likelihood] or [Forward] method; add one, e.g. '[Likelihood] Tensor LogLikelihood(Tensor x, Tensor y)' returning one value per datum");

        public static readonly DiagnosticDescriptor SeveralLikelihoods = Error("PST0008",
            "Model with several likelihoods",
            "Model class '{0}' has more than one [Likelihood]/[Forward] method ('{1}' and '{2}'); keep exactly one");

        public static readonly DiagnosticDescriptor BadLikelihoodSignature = Error("PST0009",
            "Likelihood method with an invalid signature",
            "[{0}] method '{1}' {2}");

        public static readonly DiagnosticDescriptor ReducesOverBatch = Warning("PST0010",
            "Likelihood reduces over the batch",
            "'{0}' in [Likelihood] method '{1}' {2}; the generated log posterior already averages the per-datum values (shape [B]), so a batch reduction makes the posterior B times too sharp. Reduce over event dimensions only (e.g. '{3}') or return the per-datum values.");

        public static readonly DiagnosticDescriptor PositiveSupportNeedsPositive = Error("PST0011",
            "Positive-support prior on an unconstrained parameter",
            "'{0}' has a {1} prior, whose support is θ > 0, but is not marked [Positive]; add [Positive] so that it is sampled in log space with the Jacobian term");

        public static readonly DiagnosticDescriptor NotAssignable = Error("PST0012",
            "Tensor parameter cannot be rebound",
            "Tensor parameter '{0}' is {1}; the generated code assigns it for each evaluation, so make it a non-readonly field or a property with a setter");

        public static readonly DiagnosticDescriptor PriorCycle = Error("PST0013",
            "Hierarchical priors form a cycle",
            "The priors of model '{0}' name each other in a cycle ({1}); hierarchical priors must form a directed acyclic graph");
    

        public static readonly DiagnosticDescriptor SupportMismatch = Error("PST0014",
            "Prior support does not match the constraint",
            "'{0}': {1}");
    }
}
