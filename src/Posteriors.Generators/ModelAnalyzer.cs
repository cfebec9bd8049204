using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace Posteriors.Generators
{
    /// <summary>Compile-time checks of [Model] classes (PST0001–PST0012).</summary>
    [DiagnosticAnalyzer(LanguageNames.CSharp)]
    public sealed class ModelAnalyzer : DiagnosticAnalyzer
    {
        private const string LikelihoodAttribute = "Posteriors.Modeling.LikelihoodAttribute";

        /// <inheritdoc />
        public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
            Diagnostics.NotPartial, Diagnostics.UnsupportedShape, Diagnostics.NotAParameterType, Diagnostics.InvalidPriorArgument,
            Diagnostics.MissingPrior, Diagnostics.DuplicatePrior, Diagnostics.NoLikelihood, Diagnostics.SeveralLikelihoods,
            Diagnostics.BadLikelihoodSignature, Diagnostics.ReducesOverBatch, Diagnostics.PositiveSupportNeedsPositive,
            Diagnostics.NotAssignable);

        /// <inheritdoc />
        public override void Initialize(AnalysisContext context)
        {
            context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
            context.EnableConcurrentExecution();
            context.RegisterSymbolAction(AnalyzeType, SymbolKind.NamedType);
            context.RegisterOperationAction(AnalyzeInvocation, OperationKind.Invocation);
        }

        private static void AnalyzeType(SymbolAnalysisContext context)
        {
            var type = (INamedTypeSymbol)context.Symbol;
            if (!type.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == ModelReader.ModelAttribute)) return;
            ModelReader.Read(type, context.ReportDiagnostic, context.CancellationToken);
        }

        /// <summary>PST0010: sum()/mean() with no dimension inside a [Likelihood] method.</summary>
        private static void AnalyzeInvocation(OperationAnalysisContext context)
        {
            var invocation = (IInvocationOperation)context.Operation;
            var method = invocation.TargetMethod;
            if (method.Name is not ("sum" or "mean" or "nansum" or "nanmean")) return;
            var container = method.ContainingType?.ToDisplayString();
            if (container is not ("TorchSharp.torch.Tensor" or "TorchSharp.torch")) return;
            // Overloads that reduce over given dimensions have a parameter for them; the batch-reducing ones do not.
            if (method.Parameters.Any(p => p.Name.StartsWith("dim", System.StringComparison.Ordinal))) return;
            if (context.ContainingSymbol is not IMethodSymbol likelihood ||
                !likelihood.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == LikelihoodAttribute))
                return;
            var location = invocation.Syntax.GetLocation();
            if (invocation.Syntax is Microsoft.CodeAnalysis.CSharp.Syntax.InvocationExpressionSyntax
                {
                    Expression: Microsoft.CodeAnalysis.CSharp.Syntax.MemberAccessExpressionSyntax access
                } syntax)
                location = Location.Create(syntax.SyntaxTree, Microsoft.CodeAnalysis.Text.TextSpan.FromBounds(access.Name.SpanStart, syntax.Span.End));
            context.ReportDiagnostic(Diagnostic.Create(Diagnostics.ReducesOverBatch, location, method.Name, likelihood.Name));
        }
    }
}
