using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace Posteriors.Generators
{
    /// <summary>Compile-time checks of [Model] classes (PST0001–PST0014).</summary>
    [DiagnosticAnalyzer(LanguageNames.CSharp)]
    public sealed class ModelAnalyzer : DiagnosticAnalyzer
    {
        private const string LikelihoodAttribute = "Posteriors.Modeling.LikelihoodAttribute";

        /// <inheritdoc />
        public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
            Diagnostics.NotPartial, Diagnostics.UnsupportedShape, Diagnostics.NotAParameterType, Diagnostics.InvalidPriorArgument,
            Diagnostics.MissingPrior, Diagnostics.DuplicatePrior, Diagnostics.NoLikelihood, Diagnostics.SeveralLikelihoods,
            Diagnostics.BadLikelihoodSignature, Diagnostics.ReducesOverBatch, Diagnostics.PositiveSupportNeedsPositive,
            Diagnostics.NotAssignable, Diagnostics.PriorCycle, Diagnostics.SupportMismatch);

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

        /// <summary>
        /// PST0010: a reduction over the batch inside a [Likelihood] method — sum()/mean() with no dimension, or over
        /// dimension 0 (<c>sum(0, keepdim: true)</c>, <c>sum(dim: 0)</c>, <c>mean(new long[] { 0 })</c>).
        /// </summary>
        /// <remarks>
        /// TorchSharp's <c>Tensor.sum</c> has the overloads <c>sum(ScalarType? type = null)</c> and
        /// <c>sum(long dim, bool keepdim = false, ScalarType? type = null)</c>. A bare literal <c>0</c> converts both to
        /// <c>long</c> and (as the literal zero converts to every enum) to <c>ScalarType?</c>; neither conversion is
        /// better, and C# then prefers the candidate that needs no default arguments, so <c>t.sum(0)</c> is
        /// <c>t.sum(type: 0)</c>: a sum over every dimension. Its <c>mean</c> takes dimensions only as <c>long[]</c>.
        /// </remarks>
        private static void AnalyzeInvocation(OperationAnalysisContext context)
        {
            var invocation = (IInvocationOperation)context.Operation;
            var method = invocation.TargetMethod;
            if (method.Name is not ("sum" or "mean" or "nansum" or "nanmean")) return;
            var container = method.ContainingType?.ToDisplayString();
            if (container is not ("TorchSharp.torch.Tensor" or "TorchSharp.torch")) return;
            if (context.ContainingSymbol is not IMethodSymbol likelihood ||
                !likelihood.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == LikelihoodAttribute))
                return;

            string? reason;
            var dimensions = invocation.Arguments.Where(a => a.Parameter?.Name.StartsWith("dim", System.StringComparison.Ordinal) == true).ToList();
            if (method.Parameters.Any(p => p.Name.StartsWith("dim", System.StringComparison.Ordinal)))
            {
                if (!dimensions.Any(a => NamesDimensionZero(a.Value))) return;
                var keepdim = invocation.Arguments.Any(a => a.Parameter?.Name == "keepdim" && a.Value.ConstantValue is { HasValue: true, Value: true });
                reason = "reduces over dimension 0, the batch dimension" + (keepdim ? " (keepdim: true leaves shape [1], not [B])" : "");
            }
            else
            {
                var zeroType = invocation.Arguments.Any(a => a.Parameter?.Name == "type" && a.ArgumentKind == ArgumentKind.Explicit &&
                                                             a.Value is IConversionOperation { Operand.ConstantValue: { HasValue: true, Value: 0 } });
                reason = zeroType
                    ? "binds the bare 0 to TorchSharp's 'ScalarType? type' parameter (the literal 0 converts to any enum), not to a dimension, so it reduces over every dimension, the batch included"
                    : "without a dimension reduces over every dimension, the batch included";
            }
            var fix = method.Name.EndsWith("sum", System.StringComparison.Ordinal) ? method.Name + "(1)" : method.Name + "(new long[] { 1 })";
            var location = invocation.Syntax.GetLocation();
            if (invocation.Syntax is Microsoft.CodeAnalysis.CSharp.Syntax.InvocationExpressionSyntax
                {
                    Expression: Microsoft.CodeAnalysis.CSharp.Syntax.MemberAccessExpressionSyntax access
                } syntax)
                location = Location.Create(syntax.SyntaxTree, Microsoft.CodeAnalysis.Text.TextSpan.FromBounds(access.Name.SpanStart, syntax.Span.End));
            context.ReportDiagnostic(Diagnostic.Create(Diagnostics.ReducesOverBatch, location, method.Name, likelihood.Name, reason, fix));
        }

        /// <summary>Whether a dimension argument is the constant 0 or an array or span holding it.</summary>
        private static bool NamesDimensionZero(IOperation value)
        {
            while (value is IConversionOperation conversion) value = conversion.Operand;
            if (value.ConstantValue is { HasValue: true } constant)
                return constant.Value is not null && System.Convert.ToInt64(constant.Value, System.Globalization.CultureInfo.InvariantCulture) == 0;
            if (value is IArrayCreationOperation { Initializer: { } initializer })
                return initializer.ElementValues.Any(NamesDimensionZero);
            if (value is ICollectionExpressionOperation collection)
                return collection.Elements.Any(NamesDimensionZero);
            return false;
        }
    }
}
