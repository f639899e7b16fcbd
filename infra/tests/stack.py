"""A CloudFormation template rendered for one set of parameters, offline.

cfn-lint and checkov check each template as written; they cannot say what a deployment with given
parameters contains (which bucket policy statements, which selectors, what the trail depends on).
`Stack` answers that: it reads a template with cfn-lint's own YAML loader (so `!Ref`, `!Sub`, `!If`
... mean what they mean to CloudFormation), takes the parameters' defaults with overrides, evaluates
the conditions and rules, and renders the resources that would exist with every intrinsic function
resolved. References to other resources stay symbolic: `!Ref Bucket` is `${Bucket}` and
`!GetAtt Bucket.Arn` is `${Bucket.Arn}`, as in a `!Sub`.

Only the functions the templates use are understood; anything else raises, so a template change
cannot make a test pass by being skipped.
"""

import re
from pathlib import Path

from cfnlint.decode import cfn_yaml

INFRA = Path(__file__).resolve().parent.parent

# The pseudo parameters, as in a deployment to account 111122223333 in us-east-1.
PSEUDO = {
    "AWS::AccountId": "111122223333",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::StackName": "parquetrail",
    "AWS::URLSuffix": "amazonaws.com",
}


class NoValue:
    """`!Ref AWS::NoValue`: the property or list item is left out."""


NO_VALUE = NoValue()


def load(name):
    """The template `infra/<name>` as CloudFormation reads it (short forms as `Fn::…` maps)."""
    return cfn_yaml.load(str(INFRA / name))


class Stack:
    def __init__(self, template, **overrides):
        self.template = template
        declared = template.get("Parameters", {})
        unknown = set(overrides) - set(declared)
        if unknown:
            raise KeyError(f"the template has no parameters {sorted(unknown)}")
        self.parameters = {}
        for name, spec in declared.items():
            value = overrides.get(name, spec.get("Default"))
            if value is None:
                raise KeyError(f"parameter {name} has no default: give it a value")
            value = str(value) if not isinstance(value, bool) else str(value).lower()
            allowed = spec.get("AllowedValues")
            if allowed is not None and value not in [str(a) for a in allowed]:
                raise ValueError(f"{name}={value!r} is not one of {allowed}")
            pattern = spec.get("AllowedPattern")
            if pattern is not None and not re.fullmatch(pattern, value):
                raise ValueError(f"{name}={value!r} does not match {pattern}")
            if spec["Type"] == "CommaDelimitedList":
                value = value.split(",")
            self.parameters[name] = value
        self._conditions = {}

    # ------------------------------------------------------------------ conditions and rules
    def condition(self, name):
        if name not in self._conditions:
            self._conditions[name] = self._truth(self.template["Conditions"][name])
        return self._conditions[name]

    def _truth(self, expr):
        ((function, args),) = expr.items()
        if function == "Fn::Not":
            return not self._truth(args[0])
        if function == "Fn::And":
            return all(self._truth(a) for a in args)
        if function == "Fn::Or":
            return any(self._truth(a) for a in args)
        if function == "Fn::Equals":
            left, right = (self.resolve(a) for a in args)
            return str(left) == str(right)
        if function == "Fn::Contains":
            values, value = (self.resolve(a) for a in args)
            return value in values
        if function == "Condition":
            return self.condition(args)
        raise ValueError(f"condition function not understood: {function}")

    def failed_rules(self):
        """The names of the template's `Rules` whose assertions fail with these parameters."""
        failed = []
        for name, rule in self.template.get("Rules", {}).items():
            applies = rule.get("RuleCondition")
            if applies is not None and not self._truth(applies):
                continue
            if not all(self._truth(a["Assert"]) for a in rule["Assertions"]):
                failed.append(name)
        return failed

    # ------------------------------------------------------------------ values
    def resolve(self, node):
        if isinstance(node, list):
            items = (self.resolve(item) for item in node)
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, args),) = node.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self._function(key, args)
        rendered = {}
        for key, value in node.items():
            value = self.resolve(value)
            if value is not NO_VALUE:
                rendered[key] = value
        return rendered

    def _function(self, function, args):
        if function == "Ref":
            if args == "AWS::NoValue":
                return NO_VALUE
            if args in self.parameters:
                return self.parameters[args]
            if args in PSEUDO:
                return PSEUDO[args]
            self._require_resource(args)
            return "${" + args + "}"
        if function == "Fn::GetAtt":
            name, attribute = args if isinstance(args, list) else args.split(".", 1)
            self._require_resource(name)
            return "${" + name + "." + attribute + "}"
        if function == "Fn::If":
            name, then, otherwise = args
            return self.resolve(then if self.condition(name) else otherwise)
        if function == "Fn::Sub":
            if isinstance(args, list):
                body, variables = args
                variables = {k: self.resolve(v) for k, v in variables.items()}
            else:
                body, variables = args, {}
            return self._substitute(body, variables)
        if function == "Fn::Join":
            separator, items = args
            return separator.join(str(i) for i in self.resolve(items))
        if function == "Fn::Split":
            separator, text = args
            return self.resolve(text).split(separator)
        if function == "Fn::Select":
            index, items = args
            return self.resolve(items)[int(self.resolve(index))]
        if function == "Fn::FindInMap":
            mapping, key, field = (self.resolve(a) for a in args)
            return self.template["Mappings"][mapping][str(key)][field]
        raise ValueError(f"function not understood: {function}")

    def _substitute(self, body, variables):
        def one(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if name in self.parameters:
                value = self.parameters[name]
                if isinstance(value, list):
                    raise ValueError(f"!Sub of the list parameter {name}")
                return value
            if name in PSEUDO:
                return PSEUDO[name]
            self._require_resource(name.split(".", 1)[0])
            return "${" + name + "}"

        return re.sub(r"\$\{([^}]+)\}", one, body)

    def _require_resource(self, name):
        resource = self.template["Resources"].get(name)
        if resource is None:
            raise KeyError(f"reference to {name}, which is neither a parameter nor a resource")
        if "Condition" in resource and not self.condition(resource["Condition"]):
            raise ValueError(f"reference to {name}, which this deployment does not create")

    # ------------------------------------------------------------------ resources
    def resources(self):
        """`{logical id: {"Type", "Properties", "DependsOn"}}` of the resources this deployment creates."""
        out = {}
        for name, resource in self.template["Resources"].items():
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            depends = resource.get("DependsOn", [])
            out[name] = {
                "Type": resource["Type"],
                "Properties": self.resolve(resource.get("Properties", {})),
                "DependsOn": [depends] if isinstance(depends, str) else list(depends),
            }
        return out

    def outputs(self):
        out = {}
        for name, output in self.template.get("Outputs", {}).items():
            if "Condition" in output and not self.condition(output["Condition"]):
                continue
            out[name] = self.resolve(output["Value"])
        return out

    def dependencies(self):
        """`{resource: {resources it waits for}}`: its DependsOn and every resource it references."""
        resources = self.resources()
        graph = {}
        for name, resource in resources.items():
            found = set(resource["DependsOn"])
            for reference in re.findall(r"\$\{([A-Za-z0-9]+)[.}]", repr(resource["Properties"])):
                if reference in resources:
                    found.add(reference)
            found.discard(name)
            graph[name] = found
        return graph


def cycle(graph):
    """A dependency cycle as a list of names, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None
