using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;

namespace Posteriors.Generators
{
    /// <summary>Generates log posteriors and parameter plumbing for classes marked [Model].</summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class ModelGenerator : IIncrementalGenerator
    {
        /// <summary>Tracking names of the pipeline steps (caching tests look them up).</summary>
        public static class Steps
        {
            /// <summary>Class symbol → model record.</summary>
            public const string Models = "Models";

            /// <summary>Valid models only.</summary>
            public const string ValidModels = "ValidModels";
        }

        /// <inheritdoc />
        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var models = context.SyntaxProvider
                .ForAttributeWithMetadataName(
                    ModelReader.ModelAttribute,
                    predicate: static (node, _) => node is ClassDeclarationSyntax,
                    transform: static (ctx, ct) => ModelReader.Read((INamedTypeSymbol)ctx.TargetSymbol, null, ct))
                .WithTrackingName(Steps.Models)
                .Where(static m => m is not null)
                .Select(static (m, _) => m!)
                .WithTrackingName(Steps.ValidModels);

            context.RegisterSourceOutput(models, static (spc, model) =>
                spc.AddSource(ModelEmitter.HintName(model), SourceText.From(ModelEmitter.Emit(model), System.Text.Encoding.UTF8)));
        }
    }
}
