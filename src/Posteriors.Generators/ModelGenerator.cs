using Microsoft.CodeAnalysis;

namespace Posteriors.Generators
{
    /// <summary>Generates log posteriors and parameter plumbing for classes marked [Model].</summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class ModelGenerator : IIncrementalGenerator
    {
        /// <inheritdoc />
        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
        }
    }
}
