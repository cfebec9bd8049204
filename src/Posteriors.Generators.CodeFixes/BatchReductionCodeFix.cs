using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Posteriors.Generators.CodeFixes
{
    /// <summary>
    /// PST0010 (a [Likelihood] that sums or averages over the batch): offers to drop the reduction, or to reduce over
    /// dimension 1 only (the event dimension of a [B, D] tensor).
    /// </summary>
    [ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(BatchReductionCodeFix)), Shared]
    public sealed class BatchReductionCodeFix : CodeFixProvider
    {
        /// <summary>The diagnostic this fixes.</summary>
        public const string DiagnosticId = "PST0010";

        /// <inheritdoc />
        public override ImmutableArray<string> FixableDiagnosticIds => ImmutableArray.Create(DiagnosticId);

        /// <inheritdoc />
        public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

        /// <inheritdoc />
        public override async Task RegisterCodeFixesAsync(CodeFixContext context)
        {
            var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
            var model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
            if (root is null || model is null) return;
            foreach (var diagnostic in context.Diagnostics)
            {
                var invocation = root.FindNode(diagnostic.Location.SourceSpan)
                    .AncestorsAndSelf().OfType<InvocationExpressionSyntax>().FirstOrDefault();
                if (invocation is null) continue;
                var isStatic = model.GetSymbolInfo(invocation, context.CancellationToken).Symbol is IMethodSymbol { IsStatic: true };
                var reduced = ReducedOperand(invocation, isStatic, out var name);
                if (reduced is null) continue;

                context.RegisterCodeFix(CodeAction.Create(
                    "Return the per-datum values (remove '" + name + "()')",
                    _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(invocation, reduced.WithTriviaFrom(invocation)))),
                    equivalenceKey: "PST0010.Remove"), diagnostic);

                var overDimension = SyntaxFactory.InvocationExpression(
                        SyntaxFactory.MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, Parenthesize(reduced), SyntaxFactory.IdentifierName(name)),
                        SyntaxFactory.ArgumentList(SyntaxFactory.SingletonSeparatedList(SyntaxFactory.Argument(DimensionOne(name)))))
                    .WithTriviaFrom(invocation);
                context.RegisterCodeFix(CodeAction.Create(
                    "Reduce over the event dimension only ('" + name + "' over dimension 1)",
                    _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(invocation, overDimension))),
                    equivalenceKey: "PST0010.Dimension1"), diagnostic);
            }
        }

        /// <summary>The tensor being reduced: the receiver of <c>t.sum()</c> or the argument of <c>torch.sum(t)</c>.</summary>
        private static ExpressionSyntax? ReducedOperand(InvocationExpressionSyntax invocation, bool isStatic, out string name)
        {
            name = "";
            if (invocation.Expression is not MemberAccessExpressionSyntax access) return null;
            name = access.Name.Identifier.ValueText;
            if (!isStatic) return access.Expression;
            return invocation.ArgumentList.Arguments.Count > 0 ? invocation.ArgumentList.Arguments[0].Expression : null;
        }

        /// <summary>TorchSharp's sum takes a long dimension; its mean only an array of them.</summary>
        private static ExpressionSyntax DimensionOne(string name) =>
            name.EndsWith("sum", System.StringComparison.Ordinal)
                ? SyntaxFactory.LiteralExpression(SyntaxKind.NumericLiteralExpression, SyntaxFactory.Literal(1))
                : SyntaxFactory.ParseExpression("new long[] { 1 }");

        private static ExpressionSyntax Parenthesize(ExpressionSyntax e) =>
            e is IdentifierNameSyntax or MemberAccessExpressionSyntax or InvocationExpressionSyntax or ParenthesizedExpressionSyntax or ElementAccessExpressionSyntax
                ? e
                : SyntaxFactory.ParenthesizedExpression(e);
    }
}
