using System.Collections.Generic;
using System.Linq;

namespace Posteriors.Generators
{
    /// <summary>The graph of hierarchical priors: a parameter depends on the parameters its prior arguments name.</summary>
    internal static class PriorGraph
    {
        /// <summary>The parameters a prior names (each once, in argument order).</summary>
        public static IEnumerable<string> Parents(ParameterSpec p) =>
            p.Arguments.Where(a => a.Source == ArgumentSource.Parameter).Select(a => a.Member).Distinct();

        /// <summary>
        /// The parameters in an order where every prior comes after the parameters it names, otherwise keeping the
        /// declaration order; <paramref name="cycle"/> is the first cycle found (then the order is incomplete).
        /// </summary>
        public static List<ParameterSpec> Order(IReadOnlyList<ParameterSpec> parameters, out List<string>? cycle)
        {
            var byName = parameters.ToDictionary(p => p.Name);
            var state = new Dictionary<string, int>(); // 1: on the current path, 2: done
            var order = new List<ParameterSpec>();
            var path = new List<string>();
            List<string>? found = null;

            bool Visit(ParameterSpec p)
            {
                state.TryGetValue(p.Name, out var s);
                if (s == 2) return true;
                if (s == 1)
                {
                    var start = path.IndexOf(p.Name);
                    found = path.Skip(start).ToList();
                    found.Add(p.Name);
                    return false;
                }
                state[p.Name] = 1;
                path.Add(p.Name);
                foreach (var parent in Parents(p))
                    if (byName.TryGetValue(parent, out var q) && !Visit(q)) return false;
                path.RemoveAt(path.Count - 1);
                state[p.Name] = 2;
                order.Add(p);
                return true;
            }

            foreach (var p in parameters)
                if (!Visit(p)) break;
            cycle = found;
            return order;
        }
    }
}
