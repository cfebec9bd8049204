using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Posteriors.Modeling;

namespace Posteriors.Generators
{
    /// <summary>
    /// Reads a [Model] class into a <see cref="ModelSpec"/>, reporting every problem it finds. The generator and the
    /// analyzer share it, so they agree on what a valid model is; the generator emits only when there is no error.
    /// </summary>
    internal static class ModelReader
    {
        public const string ModelAttribute = "Posteriors.Modeling.ModelAttribute";
        private const string PriorAttribute = "Posteriors.Modeling.PriorAttribute";
        private const string PositiveAttribute = "Posteriors.Modeling.PositiveAttribute";
        private const string FixedAttribute = "Posteriors.Modeling.FixedAttribute";
        private const string HyperAttribute = "Posteriors.Modeling.HyperAttribute";
        private const string BoundedAttribute = "Posteriors.Modeling.BoundedAttribute";

        /// <summary>The constraint attributes and the constraint each declares.</summary>
        private static readonly (string Attribute, Constraint Constraint)[] ConstraintAttributes =
        {
            (PositiveAttribute, Constraint.Positive),
            (BoundedAttribute, Constraint.Interval),
            ("Posteriors.Modeling.UnitIntervalAttribute", Constraint.Interval),
            ("Posteriors.Modeling.SimplexAttribute", Constraint.Simplex),
            ("Posteriors.Modeling.OrderedAttribute", Constraint.Ordered),
            ("Posteriors.Modeling.CholeskyCorrelationAttribute", Constraint.CholeskyCorrelation),
        };
        private const string LikelihoodAttribute = "Posteriors.Modeling.LikelihoodAttribute";
        private const string ForwardAttribute = "Posteriors.Modeling.ForwardAttribute";
        private const string TensorType = "TorchSharp.torch.Tensor";
        private const string ModuleType = "TorchSharp.torch.nn.Module";

        private enum MemberKind { Other, Tensor, Module }

        /// <summary>The model, or <c>null</c> when an error prevents generating it.</summary>
        public static ModelSpec? Read(INamedTypeSymbol type, Action<Diagnostic>? report, CancellationToken cancellationToken)
        {
            var errors = 0;
            void Report(DiagnosticDescriptor descriptor, Location? location, params object[] args)
            {
                if (descriptor.DefaultSeverity == DiagnosticSeverity.Error) errors++;
                report?.Invoke(Diagnostic.Create(descriptor, location ?? type.Locations.FirstOrDefault(), args));
            }

            var identifier = type.Locations.FirstOrDefault();
            var declarations = type.DeclaringSyntaxReferences.Select(r => r.GetSyntax(cancellationToken)).OfType<ClassDeclarationSyntax>().ToList();
            if (declarations.Count == 0 || !declarations.Any(d => d.Modifiers.Any(SyntaxKind.PartialKeyword)))
                Report(Diagnostics.NotPartial, identifier, type.Name);
            if (type.ContainingType is not null)
                Report(Diagnostics.UnsupportedShape, identifier, type.Name, "nested in '" + type.ContainingType.Name + "'");
            else if (type.IsGenericType)
                Report(Diagnostics.UnsupportedShape, identifier, type.Name, "generic");

            var parameters = new List<ParameterSpec>();
            var priorLocations = new Dictionary<string, Location?>();
            var hypers = new HashSet<string>();
            var likelihoods = new List<(IMethodSymbol Method, AttributeData Attribute, bool IsForward)>();
            foreach (var member in type.GetMembers())
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (member.IsImplicitlyDeclared) continue;
                switch (member)
                {
                    case IFieldSymbol or IPropertySymbol:
                        if (ReadHyper(member, Report) is bool isHyper)
                        {
                            if (isHyper) hypers.Add(member.Name);
                            break;
                        }
                        var parameter = ReadMember(type, member, Report);
                        if (parameter is not null)
                        {
                            parameters.Add(parameter);
                            priorLocations[member.Name] = member.GetAttributes()
                                .Where(a => a.AttributeClass?.ToDisplayString() == PriorAttribute).Select(AttributeLocation).FirstOrDefault()
                                ?? member.Locations.FirstOrDefault();
                        }
                        break;
                    case IMethodSymbol method:
                        foreach (var attribute in method.GetAttributes())
                        {
                            var name = attribute.AttributeClass?.ToDisplayString();
                            if (name == LikelihoodAttribute) likelihoods.Add((method, attribute, false));
                            else if (name == ForwardAttribute) likelihoods.Add((method, attribute, true));
                        }
                        break;
                }
            }

            parameters = ResolveArguments(type, parameters, hypers, priorLocations, Report);

            LikelihoodSpec? likelihood = null;
            if (likelihoods.Count == 0)
                Report(Diagnostics.NoLikelihood, identifier, type.Name);
            for (var i = 1; i < likelihoods.Count; i++)
                Report(Diagnostics.SeveralLikelihoods, AttributeLocation(likelihoods[i].Attribute) ?? likelihoods[i].Method.Locations.FirstOrDefault(),
                    type.Name, likelihoods[0].Method.Name, likelihoods[i].Method.Name);
            if (likelihoods.Count > 0)
            {
                var (method, attribute, isForward) = likelihoods[0];
                likelihood = isForward ? ReadForward(method, attribute, parameters, Report) : ReadLikelihood(method, Report);
            }

            if (errors > 0 || likelihood is null) return null;
            return new ModelSpec(
                type.ContainingNamespace is { IsGlobalNamespace: false } ns ? ns.ToDisplayString() : "",
                type.Name,
                new EquatableArray<ParameterSpec>(parameters.ToArray()),
                likelihood);
        }

        /// <summary>Null when the member has no [Hyper]; otherwise whether it is a valid hyperparameter.</summary>
        private static bool? ReadHyper(ISymbol member, Action<DiagnosticDescriptor, Location?, object[]> report)
        {
            var hyper = member.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == HyperAttribute);
            if (hyper is null) return null;
            var memberType = member is IFieldSymbol f ? f.Type : ((IPropertySymbol)member).Type;
            var valid = memberType.SpecialType == SpecialType.System_Double || KindOf(memberType) == MemberKind.Tensor;
            if (member.IsStatic || !valid)
            {
                var reason = member.IsStatic ? "static" : "of type '" + memberType.ToDisplayString() + "'";
                report(Diagnostics.NotAParameterType, AttributeLocation(hyper) ?? member.Locations.FirstOrDefault(),
                    new object[] { member.Name, "Hyper", reason, "hyperparameters are instance double or Tensor members" });
                return false;
            }
            return true;
        }

        /// <summary>Resolves the member names in prior arguments and rejects cycles and unsupported combinations.</summary>
        private static List<ParameterSpec> ResolveArguments(INamedTypeSymbol model, List<ParameterSpec> parameters, HashSet<string> hypers,
            Dictionary<string, Location?> locations, Action<DiagnosticDescriptor, Location?, object[]> report)
        {
            var byName = parameters.ToDictionary(p => p.Name);
            var resolved = new List<ParameterSpec>();
            foreach (var p in parameters)
            {
                var ok = true;
                var arguments = new List<PriorArgumentSpec>();
                foreach (var a in p.Arguments)
                {
                    if (a.Source == ArgumentSource.Constant)
                    {
                        arguments.Add(a);
                        continue;
                    }
                    string? problem = null;
                    var source = ArgumentSource.Parameter;
                    if (hypers.Contains(a.Member)) source = ArgumentSource.Hyper;
                    else if (!byName.TryGetValue(a.Member, out var target) || target.IsModule)
                        problem = "argument '" + a.Name + "' names '" + a.Member + "', which is not a tensor parameter or a [Hyper] member of '" + model.Name + "'";
                    else if (a.Name is not ("loc" or "low" or "high") && !target.IsPositive)
                        problem = "argument '" + a.Name + "' names '" + a.Member + "', which can be negative; mark '" + a.Member + "' [Positive]";
                    if (p.IsModule && problem is null && source == ArgumentSource.Parameter)
                        problem = "a module's prior cannot name other parameters (argument '" + a.Name + "' names '" + a.Member + "')";
                    if (problem is not null)
                    {
                        report(Diagnostics.InvalidPriorArgument, locations[p.Name], new object[] { p.Name, problem });
                        ok = false;
                    }
                    arguments.Add(a with { Source = source });
                }
                foreach (var bound in p.Bounds.Where(b => b.Source == ArgumentSource.Hyper && !hypers.Contains(b.Member)))
                {
                    report(Diagnostics.InvalidPriorArgument, locations[p.Name], new object[] { p.Name,
                        "bound '" + bound.Name + "' names '" + bound.Member + "', which is not a [Hyper] member of '" + model.Name + "'" });
                    ok = false;
                }
                if (ok && p.IsPositive && p.Distribution == Distribution.StudentT &&
                    arguments.FirstOrDefault(a => a.Name == "loc") is { } loc && !(loc.Source == ArgumentSource.Constant && loc.Value == 0))
                {
                    report(Diagnostics.InvalidPriorArgument, locations[p.Name], new object[] { p.Name,
                        "StudentT on a [Positive] parameter needs loc 0: its truncation to θ > 0 has no closed form otherwise" });
                    ok = false;
                }
                if (ok) resolved.Add(p with { Arguments = new EquatableArray<PriorArgumentSpec>(arguments.ToArray()) });
            }
            if (resolved.Count != parameters.Count) return resolved;
            PriorGraph.Order(resolved, out var cycle);
            if (cycle is not null)
            {
                report(Diagnostics.PriorCycle, locations[cycle[0]], new object[] { model.Name, string.Join(" → ", cycle) });
                return new List<ParameterSpec>();
            }
            return resolved;
        }

        private static ParameterSpec? ReadMember(INamedTypeSymbol model, ISymbol member, Action<DiagnosticDescriptor, Location?, object[]> report)
        {
            var memberType = member is IFieldSymbol f ? f.Type : ((IPropertySymbol)member).Type;
            var attributes = member.GetAttributes();
            var priors = attributes.Where(a => a.AttributeClass?.ToDisplayString() == PriorAttribute).ToList();
            var constraints = attributes.Where(a => ConstraintAttributes.Any(c => c.Attribute == a.AttributeClass?.ToDisplayString())).ToList();
            var positive = constraints.FirstOrDefault();
            var constraintName = positive?.AttributeClass?.Name.Replace("Attribute", "") ?? "";
            var isFixed = attributes.Any(a => a.AttributeClass?.ToDisplayString() == FixedAttribute);
            var kind = KindOf(memberType);
            var location = member.Locations.FirstOrDefault();

            if (member.IsStatic || kind == MemberKind.Other || (member is IFieldSymbol { IsConst: true }))
            {
                var reason = member.IsStatic ? "static" : "of type '" + memberType.ToDisplayString() + "'";
                var fix = member.IsStatic ? "parameters are instance members" : "parameters are Tensor fields or properties or TorchSharp modules";
                foreach (var prior in priors) report(Diagnostics.NotAParameterType, AttributeLocation(prior) ?? location, new object[] { member.Name, "Prior", reason, fix });
                if (positive is not null) report(Diagnostics.NotAParameterType, AttributeLocation(positive) ?? location, new object[] { member.Name, constraintName, reason, fix });
                return null;
            }
            if (isFixed) return null;
            if (kind == MemberKind.Module && positive is not null)
            {
                report(Diagnostics.NotAParameterType, AttributeLocation(positive) ?? location,
                    new object[] { member.Name, constraintName, "a module", "[" + constraintName + "] applies to Tensor members; constrain inside the module instead" });
                return null;
            }
            if (constraints.Count > 1)
            {
                report(Diagnostics.SupportMismatch, AttributeLocation(constraints[1]) ?? location,
                    new object[] { member.Name, "has two constraints ([" + constraintName + "] and [" + constraints[1].AttributeClass?.Name.Replace("Attribute", "") + "]); keep one" });
                return null;
            }
            var constraint = positive is null ? Constraint.None
                : ConstraintAttributes.First(c => c.Attribute == positive.AttributeClass?.ToDisplayString()).Constraint;
            var bounds = new PriorArgumentSpec[0];
            if (constraint == Constraint.Interval)
            {
                var boundProblem = ReadBounds(positive!, out bounds);
                if (boundProblem is not null)
                {
                    report(Diagnostics.InvalidPriorArgument, AttributeLocation(positive!) ?? location, new object[] { member.Name, boundProblem });
                    return null;
                }
            }
            if (kind == MemberKind.Tensor)
            {
                var why = member switch
                {
                    IFieldSymbol { IsReadOnly: true } => "a readonly field",
                    IPropertySymbol { SetMethod: null } => "a property without a setter",
                    IPropertySymbol { SetMethod.IsInitOnly: true } => "a property with an init-only setter",
                    _ => null,
                };
                if (why is not null)
                {
                    report(Diagnostics.NotAssignable, location, new object[] { member.Name, why });
                    return null;
                }
            }

            if (priors.Count > 1)
            {
                foreach (var extra in priors.Skip(1))
                    report(Diagnostics.DuplicatePrior, AttributeLocation(extra) ?? location, new object[] { member.Name, priors.Count });
                return null;
            }
            if (priors.Count == 0)
            {
                report(Diagnostics.MissingPrior, location, new object[] { member.Name, model.Name });
                return new ParameterSpec(member.Name, kind == MemberKind.Module, constraint, Distribution.Flat,
                    new EquatableArray<PriorArgumentSpec>(new PriorArgumentSpec[0]), new EquatableArray<PriorArgumentSpec>(bounds));
            }

            var attribute = priors[0];
            var args = attribute.ConstructorArguments;
            if (attribute.AttributeConstructor is null || args.Length == 0 || args[0].Value is not int code)
                return null; // the compiler reports the malformed attribute
            var distribution = (Distribution)code;
            var raw = args.Skip(1).Select(a => a.Value).ToArray();
            var problem = CheckPrior(distribution, raw, out var arguments);
            if (problem is not null)
            {
                report(Diagnostics.InvalidPriorArgument, AttributeLocation(attribute) ?? location, new object[] { member.Name, problem });
                return null;
            }
            if (IsPositiveSupport(distribution) && constraint == Constraint.None)
            {
                report(Diagnostics.PositiveSupportNeedsPositive, AttributeLocation(attribute) ?? location,
                    new object[] { member.Name, distribution.ToString() });
                return null;
            }
            var mismatch = SupportProblem(constraint, distribution, arguments, bounds);
            if (mismatch is not null)
            {
                report(Diagnostics.SupportMismatch, AttributeLocation(attribute) ?? location, new object[] { member.Name, mismatch });
                return null;
            }
            return new ParameterSpec(member.Name, kind == MemberKind.Module, constraint, distribution,
                new EquatableArray<PriorArgumentSpec>(arguments), new EquatableArray<PriorArgumentSpec>(bounds));
        }

        /// <summary>The (low, high) of [Bounded] (numbers or [Hyper] names), or (0, 1) for [UnitInterval].</summary>
        private static string? ReadBounds(AttributeData attribute, out PriorArgumentSpec[] bounds)
        {
            bounds = new[] { new PriorArgumentSpec("low", ArgumentSource.Constant, 0, ""), new PriorArgumentSpec("high", ArgumentSource.Constant, 1, "") };
            if (attribute.AttributeClass?.ToDisplayString() != BoundedAttribute) return null;
            var args = attribute.ConstructorArguments;
            if (args.Length != 2) return "[Bounded] takes (low, high)";
            for (var i = 0; i < 2; i++)
            {
                var name = i == 0 ? "low" : "high";
                switch (args[i].Value)
                {
                    case string member when member.Length > 0:
                        bounds[i] = new PriorArgumentSpec(name, ArgumentSource.Hyper, 0, member);
                        break;
                    case double or float or int or long or short or byte or sbyte or uint or ulong or ushort or decimal:
                        var v = Convert.ToDouble(args[i].Value, CultureInfo.InvariantCulture);
                        if (double.IsNaN(v) || double.IsInfinity(v)) return "bound " + name + " is " + Format(v) + "; it must be finite";
                        bounds[i] = new PriorArgumentSpec(name, ArgumentSource.Constant, v, "");
                        break;
                    default:
                        return "bound " + name + " is " + args[i].Value + "; give a number or nameof([Hyper] member)";
                }
            }
            if (bounds[0].Source == ArgumentSource.Constant && bounds[1].Source == ArgumentSource.Constant && !(bounds[0].Value < bounds[1].Value))
                return "bounds (" + Format(bounds[0].Value) + ", " + Format(bounds[1].Value) + ") are empty; low must be below high";
            return null;
        }

        /// <summary>Why a prior's support does not match the parameter's constraint, or null.</summary>
        private static string? SupportProblem(Constraint constraint, Distribution distribution, PriorArgumentSpec[] arguments, PriorArgumentSpec[] bounds)
        {
            if (distribution == Distribution.Flat) return null;
            var bounded = distribution is Distribution.Uniform or Distribution.Beta or Distribution.Dirichlet or Distribution.LkjCholesky;
            var realLine = !bounded && !IsPositiveSupport(distribution);
            static bool Same(PriorArgumentSpec a, PriorArgumentSpec b) =>
                (a.Source == ArgumentSource.Constant) == (b.Source == ArgumentSource.Constant)
                && (a.Source == ArgumentSource.Constant ? a.Value == b.Value : a.Member == b.Member);
            string Needs(string what) => "a " + distribution + " prior " + what + " (the support must match the constraint)";
            switch (constraint)
            {
                case Constraint.None:
                    return bounded ? Needs(distribution switch
                    {
                        Distribution.Uniform => "needs [Bounded(low, high)] with the same bounds",
                        Distribution.Beta => "needs [UnitInterval]",
                        Distribution.Dirichlet => "needs [Simplex]",
                        _ => "needs [CholeskyCorrelation]",
                    }) : null;
                case Constraint.Positive:
                    return bounded ? Needs("cannot be used on a [Positive] parameter") : null;
                case Constraint.Interval:
                    if (distribution == Distribution.Uniform)
                        return Same(arguments[0], bounds[0]) && Same(arguments[1], bounds[1]) ? null : Needs("must have the same bounds as [Bounded]");
                    if (distribution == Distribution.Beta)
                        return bounds[0] is { Source: ArgumentSource.Constant, Value: 0 } && bounds[1] is { Source: ArgumentSource.Constant, Value: 1 }
                            ? null : Needs("lives on (0, 1): use [UnitInterval]");
                    return Needs("cannot be used on an interval parameter: use Uniform with the same bounds, Beta on [UnitInterval], or Flat");
                case Constraint.Simplex:
                    return distribution == Distribution.Dirichlet ? null : Needs("cannot be used on a [Simplex] parameter: use Dirichlet or Flat");
                case Constraint.Ordered:
                    return realLine ? null : Needs("cannot be used on an [Ordered] parameter: use a real-line prior or Flat");
                default:
                    return distribution == Distribution.LkjCholesky ? null : Needs("cannot be used on a [CholeskyCorrelation] parameter: use LkjCholesky or Flat");
            }
        }

        private static LikelihoodSpec? ReadLikelihood(IMethodSymbol method, Action<DiagnosticDescriptor, Location?, object[]> report)
        {
            var problem = CommonProblem(method);
            if (problem is null && method.Parameters.Length == 0)
                problem = "has no parameters; its parameters are one mini-batch, e.g. (Tensor x, Tensor y)";
            if (problem is null)
            {
                var bad = method.Parameters.FirstOrDefault(p => p.RefKind != RefKind.None || p.IsParams || p.Type.IsRefLikeType);
                if (bad is not null) problem = "has parameter '" + bad.Name + "' passed by reference, params or of a ref struct type; batch components are plain values";
            }
            if (problem is not null)
            {
                report(Diagnostics.BadLikelihoodSignature, method.Locations.FirstOrDefault(), new object[] { "Likelihood", method.Name, problem });
                return null;
            }
            var arguments = method.Parameters
                .Select(p => new ArgumentSpec(p.Name, p.Type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat), KindOf(p.Type) == MemberKind.Tensor))
                .ToArray();
            return new LikelihoodSpec(method.Name, false, new EquatableArray<ArgumentSpec>(arguments), OutputDistribution.Categorical, double.NaN, "");
        }

        private static LikelihoodSpec? ReadForward(IMethodSymbol method, AttributeData attribute, List<ParameterSpec> parameters,
            Action<DiagnosticDescriptor, Location?, object[]> report)
        {
            var problem = CommonProblem(method);
            if (problem is null && (method.Parameters.Length != 1 || KindOf(method.Parameters[0].Type) != MemberKind.Tensor || method.Parameters[0].RefKind != RefKind.None))
                problem = "must take exactly one Tensor parameter (the inputs x); the batch is (Tensor X, Tensor Y)";
            var args = attribute.ConstructorArguments;
            if (attribute.AttributeConstructor is null || args.Length == 0 || args[0].Value is not int code) return null;
            var output = (OutputDistribution)code;
            var scale = args.Length > 1 && args[1].Value is double s ? s : double.NaN;
            var scaleMember = args.Length > 1 && args[1].Value is string m ? m : "";
            if (problem is null && scaleMember.Length > 0)
            {
                var target = parameters.FirstOrDefault(p => p.Name == scaleMember);
                if (output != OutputDistribution.Normal)
                    problem = "gives a scale to a " + output + " likelihood, which has none";
                else if (target is null || target.IsModule || !target.IsPositive)
                    problem = "names '" + scaleMember + "' as its scale; a learned σ must be a [Positive] tensor parameter of the model";
            }
            else if (problem is null)
            {
                if (output == OutputDistribution.Normal && !(scale > 0 && !double.IsInfinity(scale)))
                    problem = args.Length > 1
                        ? "has a Normal likelihood with scale " + Format(scale) + "; the scale must be positive and finite"
                        : "has a Normal likelihood without a scale; write [Forward(OutputDistribution.Normal, sigma)]";
                else if (output != OutputDistribution.Normal && args.Length > 1)
                    problem = "gives a scale to a " + output + " likelihood, which has none";
                else if (output is not (OutputDistribution.Categorical or OutputDistribution.Bernoulli or OutputDistribution.Normal))
                    problem = "names an unknown output likelihood (" + code + ")";
            }
            if (problem is not null)
            {
                report(Diagnostics.BadLikelihoodSignature, method.Locations.FirstOrDefault(), new object[] { "Forward", method.Name, problem });
                return null;
            }
            var arguments = new[] { new ArgumentSpec(method.Parameters[0].Name, "global::TorchSharp.torch.Tensor", true) };
            return new LikelihoodSpec(method.Name, true, new EquatableArray<ArgumentSpec>(arguments), output,
                output == OutputDistribution.Normal && scaleMember.Length == 0 ? scale : double.NaN, scaleMember);
        }

        private static string? CommonProblem(IMethodSymbol method)
        {
            if (method.IsStatic) return "is static; it must be an instance method so that it sees the model's parameters";
            if (method.IsGenericMethod) return "is generic; it must not have type parameters";
            if (method.ReturnsByRef || method.ReturnsByRefReadonly || KindOf(method.ReturnType) != MemberKind.Tensor)
                return "returns '" + method.ReturnType.ToDisplayString() + "'; it must return a Tensor";
            return null;
        }

        /// <summary>The names of a distribution's arguments, in order; null for an unknown distribution.</summary>
        internal static string[]? ArgumentNames(Distribution distribution) => distribution switch
        {
            Distribution.Flat => new string[0],
            Distribution.Normal or Distribution.Laplace or Distribution.Cauchy or Distribution.LogNormal => new[] { "loc", "scale" },
            Distribution.StudentT => new[] { "df", "loc", "scale" },
            Distribution.HalfNormal or Distribution.HalfCauchy => new[] { "scale" },
            Distribution.Gamma => new[] { "shape", "rate" },
            Distribution.Exponential => new[] { "rate" },
            Distribution.Uniform => new[] { "low", "high" },
            Distribution.Beta => new[] { "alpha", "beta" },
            Distribution.Dirichlet or Distribution.LkjCholesky => new[] { "concentration" },
            _ => null,
        };

        /// <summary>
        /// A message for the first invalid argument, or <c>null</c>. Numbers are checked here; member names (strings)
        /// are resolved once every member has been read.
        /// </summary>
        internal static string? CheckPrior(Distribution distribution, object?[] values, out PriorArgumentSpec[] arguments)
        {
            arguments = new PriorArgumentSpec[0];
            var names = ArgumentNames(distribution);
            if (names is null) return "unknown distribution (" + (int)distribution + ")";
            if (values.Length != names.Length)
                return distribution + " takes " + names.Length + " argument" + (names.Length == 1 ? "" : "s") +
                       (names.Length == 0 ? "" : " (" + string.Join(", ", names) + ")") + " but " + values.Length + (values.Length == 1 ? " was" : " were") + " given";
            var result = new PriorArgumentSpec[names.Length];
            for (var i = 0; i < names.Length; i++)
            {
                switch (values[i])
                {
                    case string member when member.Length > 0:
                        result[i] = new PriorArgumentSpec(names[i], ArgumentSource.Parameter, 0, member);
                        continue;
                    case string or null:
                        return distribution + " " + names[i] + " is an empty name; give a number or nameof(Member)";
                    case double or float or int or long or short or byte or sbyte or uint or ulong or ushort or decimal:
                        break;
                    default:
                        return distribution + " " + names[i] + " is " + values[i] + "; give a number or nameof(Member)";
                }
                var v = Convert.ToDouble(values[i], CultureInfo.InvariantCulture);
                if (double.IsNaN(v) || double.IsInfinity(v))
                    return distribution + " " + names[i] + " is " + Format(v) + "; it must be finite";
                if (names[i] is not ("loc" or "low" or "high") && !(v > 0))
                    return distribution + " " + names[i] + " is " + Format(v) + "; it must be positive";
                result[i] = new PriorArgumentSpec(names[i], ArgumentSource.Constant, v, "");
            }
            if (distribution == Distribution.Uniform && result[0].Source == ArgumentSource.Constant && result[1].Source == ArgumentSource.Constant
                && !(result[0].Value < result[1].Value))
                return "Uniform low " + Format(result[0].Value) + " is not below high " + Format(result[1].Value);
            arguments = result;
            return null;
        }

        internal static bool IsPositiveSupport(Distribution d) =>
            d is Distribution.HalfNormal or Distribution.HalfCauchy or Distribution.LogNormal or Distribution.Gamma or Distribution.Exponential;

        internal static string Format(double v) =>
            double.IsNaN(v) ? "NaN" : double.IsPositiveInfinity(v) ? "+∞" : double.IsNegativeInfinity(v) ? "−∞" : v.ToString("R", CultureInfo.InvariantCulture);

        private static MemberKind KindOf(ITypeSymbol type)
        {
            if (type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat) == "global::" + TensorType) return MemberKind.Tensor;
            for (var t = type as INamedTypeSymbol; t is not null; t = t.BaseType)
                if (t.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat) == "global::" + ModuleType) return MemberKind.Module;
            return MemberKind.Other;
        }

        internal static bool IsTensor(ITypeSymbol type) => KindOf(type) == MemberKind.Tensor;

        private static Location? AttributeLocation(AttributeData attribute) => attribute.ApplicationSyntaxReference?.GetSyntax().GetLocation();
    }
}
